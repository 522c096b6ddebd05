/**
 * The blog's HTML, as plain template strings. Every page ends with the footer that shows what
 * the cache did. Two kinds of facts meet there:
 * - what the render knew, baked into the HTML: when it was generated, how long it took, the
 *   page's window (`revalidate`). A replayed page repeats them, which is right: they describe
 *   the render that produced it.
 * - what only this response knows — HIT, STALE, MISS or BYPASS, its age, how long it took —
 *   read by a small inline script from the response's own `Server-Timing` header (see
 *   `server-timing.ts`), since the cached bytes cannot say it.
 */
import type { Post } from './cms';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What a render knows about itself, for the footer. */
export interface RenderInfo {
  /** Milliseconds the app spent producing this HTML (the CMS fetch, then the template). */
  renderMs: number;
  /** The page's window in seconds, as given to `res.isr()`; `false`: only on demand. */
  revalidate: number | false;
}

export function homePage(posts: Post[], render?: RenderInfo): string {
  return page('express-isr demo blog', postList(posts), {
    intro:
      'A blog whose pages are rendered once, served from the cache, and regenerated in the background.',
    render,
  });
}

export function topicPage(topic: string, posts: Post[], render?: RenderInfo): string {
  return page(`Posts about ${topic}`, postList(posts), { render });
}

export function postPage(post: Post, render?: RenderInfo): string {
  const paragraphs = post.body
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeHtml(p.trim())}</p>`)
    .join('\n');
  const main = `<article>
<p class="meta"><time datetime="${post.date}">${post.date}</time> ${topicLinks(post)}</p>
<div class="body">${paragraphs}</div>
</article>`;
  return page(post.title, main, { render });
}

export function aboutPage(render?: RenderInfo): string {
  return page(
    'About',
    `<p>A demo of express-isr: Incremental Static Regeneration
for Express. Posts come from a small CMS that takes a while to answer, so you can tell a page
rendered now (MISS) from one replayed from the cache (HIT). Edit a post in
<a href="/admin/">the admin</a> and watch it go live.</p>
<p>This page only changes on demand (<code>revalidate: false</code>).</p>`,
    { render },
  );
}

export function notFoundPage(): string {
  return page('Not found', '<p>No such page. <a href="/">All posts</a>.</p>');
}

function postList(posts: Post[]): string {
  if (posts.length === 0) return '<p>No posts yet.</p>';
  const items = posts.map(
    (post) => `<li><a href="/blog/${post.slug}">${escapeHtml(post.title)}</a>
<span class="meta"><time datetime="${post.date}">${post.date}</time> ${topicLinks(post)}</span></li>`,
  );
  return `<ul class="posts">\n${items.join('\n')}\n</ul>`;
}

function topicLinks(post: Post): string {
  return post.topics
    .map((t) => `<a class="topic" href="/topics/${encodeURIComponent(t)}">${escapeHtml(t)}</a>`)
    .join(' ');
}

/** The page around `main`: header, navigation, and the footer with the cache state. */
export function page(
  title: string,
  main: string,
  options: { intro?: string; render?: RenderInfo; wide?: boolean } = {},
): string {
  const generated = new Date().toISOString();
  const { render } = options;
  // Facts of the render, for the script; a page without them (admin, 404) shows only the state.
  const data = render
    ? ` data-render-ms="${render.renderMs.toFixed(1)}" data-revalidate="${render.revalidate}"`
    : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="${FAVICON_DATA_URL}">
<style>${STYLE}</style>
</head><body${options.wide ? ' class="wide"' : ''}>
<nav><a href="/">Blog</a> <a href="/about">About</a> <a href="/admin/">Admin</a></nav>
<h1>${escapeHtml(title)}</h1>
${options.intro ? `<p class="intro">${escapeHtml(options.intro)}</p>` : ''}
<main>${main}</main>
<footer id="isr-footer"${data}>
<p class="isr-line"><span id="isr-state" class="isr-badge" data-state="">see the x-isr-cache header</span>
<span id="isr-timing">${render ? `rendered in ${formatMs(render.renderMs)}` : ''}</span></p>
<p class="isr-line" id="isr-age" hidden><span class="isr-meter" aria-hidden="true"><span></span></span>
<span id="isr-age-text"></span></p>
<p class="isr-generated">Generated <time datetime="${generated}">${generated}</time>
by process ${process.pid}<span id="isr-served-by"></span></p>
</footer>
<script>${FOOTER_SCRIPT}</script>
</body></html>`;
}

function formatMs(ms: number): string {
  return ms < 10 ? `${ms.toFixed(1)} ms` : `${Math.round(ms)} ms`;
}

/** A lightning bolt on the blog's blue, also served at /favicon.ico (app.ts). */
export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="7" fill="#1a56b0"/><path d="M18 4 8 18h7l-2 10 10-14h-7z" fill="#fff"/></svg>`;
// Inline, so a page costs no second request for its icon and browsers do not ask for
// /favicon.ico (which, unanswered, was a 404 in the console on every page).
const FAVICON_DATA_URL = `data:image/svg+xml,${encodeURIComponent(FAVICON_SVG)}`;

// Runs in the browser, once per page load (a reload is a new navigation entry, so it reads
// the reload's own headers). The state, the age and "served in" come from the Server-Timing
// header of the response that brought this page (browsers expose it to the page on secure
// origins, which include http://localhost); "rendered in" and the window come from the HTML.
// The age then counts up from the server's Age, on this page's own monotonic clock, so the bar
// shows the page crossing its window while you look at it.
const FOOTER_SCRIPT = `(function () {
  var footer = document.getElementById('isr-footer');
  var time = footer.querySelector('time');
  time.textContent = new Date(time.dateTime).toLocaleTimeString();
  var nav = performance.getEntriesByType('navigation')[0];
  var timing = {};
  ((nav && nav.serverTiming) || []).forEach(function (e) { timing[e.name] = e; });
  if (!timing.isr) return; // no Server-Timing (an old browser): the footer keeps its hint
  var state = timing.isr.description;
  var badge = document.getElementById('isr-state');
  badge.textContent = state;
  badge.dataset.state = state;
  badge.title = {
    HIT: 'From the cache, within its window',
    STALE: 'From the cache, past its window: a new version is rendering in the background',
    MISS: 'Not in the cache: rendered for this request, then stored',
    BYPASS: 'The cache was not used for this request'
  }[state] || '';
  var ms = function (v) { return (v < 10 ? v.toFixed(1) : Math.round(v)) + ' ms'; };
  var parts = [];
  if (footer.dataset.renderMs) parts.push('rendered in ' + ms(Number(footer.dataset.renderMs)));
  if (timing.total) parts.push('served in ' + ms(timing.total.duration));
  // A copy the browser kept itself (back button) carries the headers of the day it came.
  if (nav.transferSize === 0 && nav.decodedBodySize > 0) parts.push('this copy from your browser\\'s cache');
  document.getElementById('isr-timing').textContent = parts.join(' \\u00b7 ');
  if (timing.pid) document.getElementById('isr-served-by').textContent = ', served by process ' + timing.pid.description;

  var windowText = footer.dataset.revalidate;
  if (windowText === undefined) return;
  var line = document.getElementById('isr-age');
  var text = document.getElementById('isr-age-text');
  line.hidden = false;
  if (state === 'BYPASS') {
    line.querySelector('.isr-meter').hidden = true;
    text.textContent = 'not from the cache: rendered for this response only';
    return;
  }
  var bar = line.querySelector('.isr-meter span');
  var ageAtLoad = timing.age ? Number(timing.age.description) : 0; // a MISS is brand new
  var loaded = performance.now();
  function tick() {
    var age = ageAtLoad + Math.floor((performance.now() - loaded) / 1000);
    if (windowText === 'false') {
      bar.parentNode.hidden = true;
      text.textContent = 'age ' + age + ' s \\u00b7 no window: regenerated only on demand';
      return;
    }
    var windowS = Number(windowText);
    var past = age >= windowS;
    bar.style.width = Math.min(100, (age / windowS) * 100) + '%';
    footer.classList.toggle('isr-past', past);
    text.textContent = 'age ' + age + ' s of ' + windowS + ' s' + (past
      ? ' \\u00b7 past its window: the next visit gets this copy (STALE) and starts a new render'
      : state === 'STALE' ? ' \\u00b7 marked stale on demand' : '');
  }
  tick();
  setInterval(tick, 1000);
})();`;

// Colours: every text/background pair is at least 4.5:1 (WCAG AA), white on each badge.
const STYLE = `body{font:16px/1.6 system-ui,sans-serif;max-width:42rem;margin:2rem auto 0;padding:0 1rem;color:#222}
body.wide{max-width:64rem}
nav a{margin-right:1rem}a{color:#1a56b0}
.intro{color:#555}.meta{color:#666;font-size:.85rem}.posts .meta{margin-left:.5rem}
.posts{list-style:none;padding:0}.posts li{margin:.6rem 0}
.topic{background:#eef2fb;padding:0 .4rem;border-radius:.3rem;text-decoration:none;font-size:.8rem}
footer{position:sticky;bottom:0;margin-top:3rem;padding:.5rem 0 .6rem;border-top:1px solid #ddd;background:#fff;color:#555;font-size:.85rem}
footer p{margin:.15rem 0}.isr-generated{color:#666;font-size:.8rem}
.isr-badge{display:inline-block;min-width:4.6em;margin-right:.4rem;padding:.05rem .5rem;border-radius:.3rem;text-align:center;font:700 .85rem/1.5 ui-monospace,SFMono-Regular,Menlo,monospace;letter-spacing:.04em;color:#fff;background:#57606a}
.isr-badge[data-state=""]{color:#555;background:#fff;border:1px solid #ccc;font:inherit;letter-spacing:0}
.isr-badge[data-state=HIT]{background:#1a7f37}.isr-badge[data-state=STALE]{background:#8a5a00}
.isr-badge[data-state=MISS]{background:#b42318}.isr-badge[data-state=BYPASS]{background:#57606a}
.isr-meter{display:inline-block;width:9rem;height:.55rem;margin-right:.4rem;border-radius:.3rem;background:#e4e7eb;overflow:hidden;vertical-align:middle}
.isr-meter span{display:block;height:100%;width:0;background:#1a7f37;transition:width .9s linear}
.isr-past .isr-meter span{background:#8a5a00}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
.nowrap{white-space:nowrap}
input[type=text],textarea{width:100%;font:inherit;padding:.3rem;box-sizing:border-box}
textarea{min-height:12rem}form.inline{display:inline}
.notice{background:#eef8ee;border:1px solid #bdb;padding:.5rem .8rem;border-radius:.3rem}
.error{background:#fbeeee;border-color:#dbb}`;
