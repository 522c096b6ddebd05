/**
 * The blog's HTML, as plain template strings. Every page ends with the footer that shows when
 * it was generated (baked into the HTML: it is the render's time) and the state of the
 * response that brought it (read by a script from `Server-Timing`, see `server-timing.ts`).
 */
import type { Post } from './cms';

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function homePage(posts: Post[]): string {
  return page('express-isr demo blog', postList(posts), {
    intro:
      'A blog whose pages are rendered once, served from the cache, and regenerated in the background.',
  });
}

export function topicPage(topic: string, posts: Post[]): string {
  return page(`Posts about ${topic}`, postList(posts));
}

export function postPage(post: Post): string {
  const paragraphs = post.body
    .split(/\n\s*\n/)
    .map((p) => `<p>${escapeHtml(p.trim())}</p>`)
    .join('\n');
  const main = `<article>
<p class="meta"><time datetime="${post.date}">${post.date}</time> ${topicLinks(post)}</p>
<div class="body">${paragraphs}</div>
</article>`;
  return page(post.title, main);
}

export function aboutPage(): string {
  return page(
    'About',
    `<p>A demo of express-isr: Incremental Static Regeneration
for Express. Posts come from a small CMS that takes a while to answer, so you can tell a page
rendered now (MISS) from one replayed from the cache (HIT). Edit a post in
<a href="/admin/">the admin</a> and watch it go live.</p>
<p>This page only changes on demand (<code>revalidate: false</code>).</p>`,
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
export function page(title: string, main: string, options: { intro?: string } = {}): string {
  const generated = new Date().toISOString();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head><body>
<nav><a href="/">Blog</a> <a href="/about">About</a> <a href="/admin/">Admin</a></nav>
<h1>${escapeHtml(title)}</h1>
${options.intro ? `<p class="intro">${escapeHtml(options.intro)}</p>` : ''}
<main>${main}</main>
<footer id="isr-footer">Generated <time datetime="${generated}">${generated}</time>
by process ${process.pid} · this response: <span id="isr-state">see the x-isr-cache header</span></footer>
<script>${FOOTER_SCRIPT}</script>
</body></html>`;
}

// Runs in the browser. The generation time is in the HTML; the cache state comes from the
// Server-Timing header of the response that brought this page (browsers expose it on
// secure origins, which include http://localhost).
const FOOTER_SCRIPT = `(function () {
  var time = document.querySelector('#isr-footer time');
  var generated = new Date(time.dateTime);
  var age = Math.max(0, Math.round((Date.now() - generated.getTime()) / 1000));
  time.textContent = generated.toLocaleTimeString() + ' (' + age + ' s ago)';
  var nav = performance.getEntriesByType('navigation')[0];
  var timing = {};
  ((nav && nav.serverTiming) || []).forEach(function (e) { timing[e.name] = e.description; });
  if (timing.isr) {
    var state = document.getElementById('isr-state');
    state.textContent = timing.isr + ', served by process ' + timing.pid;
    state.dataset.state = timing.isr;
  }
})();`;

const STYLE = `body{font:16px/1.6 system-ui,sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem;color:#222}
nav a{margin-right:1rem}a{color:#1a56b0}
.intro{color:#555}.meta{color:#777;font-size:.85rem}.posts .meta{margin-left:.5rem}
.posts{list-style:none;padding:0}.posts li{margin:.6rem 0}
.topic{background:#eef2fb;padding:0 .4rem;border-radius:.3rem;text-decoration:none;font-size:.8rem}
footer{margin-top:3rem;padding-top:.6rem;border-top:1px solid #eee;color:#888;font-size:.8rem}
table{border-collapse:collapse;width:100%}td,th{padding:.3rem .5rem;border-bottom:1px solid #eee;text-align:left}
input[type=text],textarea{width:100%;font:inherit;padding:.3rem;box-sizing:border-box}
textarea{min-height:12rem}form.inline{display:inline}
.notice{background:#eef8ee;border:1px solid #bdb;padding:.5rem .8rem;border-radius:.3rem}
.error{background:#fbeeee;border-color:#dbb}`;
