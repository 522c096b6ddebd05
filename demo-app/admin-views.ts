/** The admin's HTML: the list of posts with the live cache panel, and the edit form. */
import type { EntryInfo } from '../lib';
import type { PanelSnapshot } from './cache-panel';
import type { Post } from './cms';
import { escapeHtml, page } from './views';

export interface Notice {
  text: string;
  error?: boolean;
}

export function adminListPage(posts: Post[], cache: PanelSnapshot, notice?: Notice): string {
  const rows = posts.map((post) => {
    const action = post.published ? 'unpublish' : 'publish';
    return `<tr><td><a href="/admin/posts/${post.slug}">${escapeHtml(post.title)}</a></td>
<td class="nowrap">${post.date}</td><td>${post.published ? `<a href="/blog/${post.slug}">published</a>` : 'unpublished'}</td>
<td><form class="inline" method="post" action="/admin/posts/${post.slug}/${action}">
<button type="submit">${action === 'publish' ? 'Publish' : 'Unpublish'}</button></form></td></tr>`;
  });
  return page(
    'Admin',
    `${noticeHtml(notice)}
<p>Saving a post calls the site's revalidate webhook, as a headless CMS would.</p>
<table><thead><tr><th>Title</th><th>Date</th><th>Status</th><th></th></tr></thead>
<tbody>${rows.join('\n')}</tbody></table>
${cachePanelHtml(cache)}`,
    { wide: true },
  );
}

export function adminEditPage(post: Post, notice?: Notice): string {
  return page(
    `Edit “${post.title}”`,
    `${noticeHtml(notice)}
<form method="post" action="/admin/posts/${post.slug}">
<p><label>Title<br><input type="text" name="title" value="${escapeHtml(post.title)}" required maxlength="200"></label></p>
<p><label>Body (a blank line between paragraphs)<br><textarea name="body" maxlength="20000">${escapeHtml(post.body)}</textarea></label></p>
<p><button type="submit">Save and publish</button> <a href="/admin/">Cancel</a></p>
</form>`,
  );
}

function noticeHtml(notice: Notice | undefined): string {
  if (notice === undefined) return '';
  return `<p class="notice${notice.error ? ' error' : ''}" role="status">${escapeHtml(notice.text)}</p>`;
}

/**
 * The panel: the three webhook modes for a page or a tag, the table of cached pages, and the
 * cache's events as they come. The page renders the table once; the stream (`/admin/events`)
 * sends it again, rendered by `cacheRows` below, after every change — one renderer for both,
 * so the browser only swaps HTML the server escaped. Without JavaScript the table and the
 * form still work (the form posts and comes back here).
 */
function cachePanelHtml(cache: PanelSnapshot): string {
  const targets = new Set<string>();
  for (const entry of cache.entries) {
    targets.add(entry.url);
    for (const tag of entry.tags) targets.add(tag);
  }
  const options = [...targets].map((t) => `<option value="${escapeHtml(t)}">`).join('');
  return `<section id="cache-panel" data-live="off" aria-labelledby="cache-title">
<h2 id="cache-title">Cache <span id="cache-live" class="live">not live: reload to reconnect</span></h2>
<form id="revalidate-form" method="post" action="/admin/revalidate">
<label for="revalidate-target">Page or tag</label>
<input type="text" id="revalidate-target" name="target" list="revalidate-targets" required maxlength="300" placeholder="/blog/hello or post-hello">
<datalist id="revalidate-targets">${options}</datalist>
<span class="modes"><button type="submit" name="mode" value="stale">Mark stale</button>
<button type="submit" name="mode" value="expire">Expire</button>
<button type="submit" name="mode" value="regenerate">Regenerate</button></span>
<p class="hint">A path (starting with <code>/</code>) or a tag, sent to the webhook. Mark stale: the next visitor gets the old page once, and it re-renders. Expire: never served again; the next visitor waits for a render. Regenerate: re-rendered now, in the background.</p>
<p id="revalidate-result" role="status"></p>
</form>
<table id="cache-table"><thead><tr><th>Page</th><th>State</th><th>Age</th><th>Tags</th><th>Last regeneration</th><th>Last error</th></tr></thead>
<tbody>${cacheRows(cache)}</tbody></table>
<h3 id="cache-log-title">What the cache did</h3>
<ol id="cache-log" role="log" aria-labelledby="cache-log-title"><li class="quiet">Nothing yet: open a page of the blog in another tab.</li></ol>
</section>
<style>${PANEL_STYLE}</style>
<script>${PANEL_SCRIPT}</script>`;
}

/** The table's rows; also sent by the event stream after every change. */
export function cacheRows({ entries, truncated, durations }: PanelSnapshot): string {
  if (entries.length === 0) {
    return '<tr><td colspan="6" class="quiet">Nothing cached yet.</td></tr>';
  }
  const rows = entries.map((entry) => {
    const duration = durations.get(entry.key);
    return `<tr data-key="${escapeHtml(entry.key)}" data-state="${entry.state}" data-age="${entry.age}" data-revalidate="${entry.revalidate}" data-generated-at="${entry.generatedAt}">
<td><a href="${escapeHtml(entry.url)}">${escapeHtml(entry.url)}</a>${entry.status === 200 ? '' : ` <small>(${entry.status})</small>`}</td>
<td class="nowrap"><span class="entry-state">${entry.state}</span>${entry.reason ? `<br><small class="reason">${escapeHtml(entry.reason)}</small>` : ''}</td>
<td class="nowrap"><span class="age">${entry.age} s</span><br><small>of ${entry.revalidate === false ? 'no window' : `${entry.revalidate} s`}</small></td>
<td>${tagList(entry.tags)}</td>
<td class="nowrap"><time datetime="${entry.generatedAt}">${entry.generatedAt.slice(11, 19)}</time>${duration === undefined ? '' : `<br><small>in ${Math.round(duration)} ms</small>`}</td>
<td>${lastError(entry)}</td></tr>`;
  });
  if (truncated) {
    rows.push(
      `<tr><td colspan="6" class="quiet">Only the first ${entries.length} pages.</td></tr>`,
    );
  }
  return rows.join('\n');
}

function tagList(tags: string[]): string {
  if (tags.length === 0) return '<span class="quiet">none</span>';
  const shown = tags.slice(0, 3).map((t) => `<code>${escapeHtml(t)}</code>`);
  if (tags.length > 3) {
    shown.push(
      `<span title="${escapeHtml(tags.slice(3).join(', '))}">+${tags.length - 3} more</span>`,
    );
  }
  return shown.join(' ');
}

function lastError(entry: EntryInfo): string {
  if (entry.lastError === undefined) return '<span class="quiet">—</span>';
  const { message, attempt, nextRetryAt } = entry.lastError;
  return `<span class="failed">${escapeHtml(message)}</span><br><small>attempt ${attempt}, next try <time datetime="${nextRetryAt}">${nextRetryAt.slice(11, 19)}</time></small>`;
}

const PANEL_STYLE = `#cache-panel{margin-top:2.5rem}#cache-panel h2{margin-bottom:.4rem}
.live{font-size:.8rem;font-weight:400;padding:.05rem .5rem;border-radius:1rem;background:#eee;color:#555;vertical-align:middle}
[data-live=on] .live{background:#1a7f37;color:#fff}
#revalidate-form{margin:.5rem 0 1rem}#revalidate-form input{width:18rem;max-width:100%;font:inherit;padding:.25rem .4rem}
.modes button{font:inherit;padding:.25rem .7rem;margin:.2rem .1rem;cursor:pointer}
.hint,.quiet{color:#666;font-size:.85rem}
#cache-table small{color:#555}#cache-table code{white-space:nowrap;font-size:.8rem;background:#f2f4f7;padding:0 .25rem;border-radius:.2rem}
.entry-state{display:inline-block;padding:0 .45rem;border-radius:.3rem;font-weight:700;font-size:.85rem;color:#fff;background:#1a7f37}
[data-state=stale] .entry-state{background:#8a5a00}[data-state=expired] .entry-state{background:#b42318}
.failed{color:#b42318}
@keyframes changed{from{background:#fff0b3}to{background:transparent}}
tr.changed td{animation:changed 2s ease-out}
#cache-log{list-style:none;padding:0;margin:0;max-height:16rem;overflow:auto;font-size:.85rem}
#cache-log li{padding:.1rem 0;border-bottom:1px solid #f0f0f0}
#cache-log .type{display:inline-block;min-width:8.5rem;font-family:ui-monospace,monospace;font-weight:700}`;

// Runs in the browser. Opens the event stream, swaps the table when a new one comes, flashes
// the rows that changed, logs each event, and ticks the ages between updates (counted on this
// page's monotonic clock from the server's age, so the visitor's wall clock does not matter;
// a fresh row past its window turns stale by the same rule the cache applies on its next read).
// The revalidate buttons post with fetch, so the page — and the stream — stay open.
const PANEL_SCRIPT = `(function () {
  var panel = document.getElementById('cache-panel');
  var live = document.getElementById('cache-live');
  var tbody = document.querySelector('#cache-table tbody');
  var log = document.getElementById('cache-log');
  var result = document.getElementById('revalidate-result');
  var received = performance.now();
  var localTime = function (iso) { return new Date(iso).toLocaleTimeString(); };

  function tick() {
    var elapsed = Math.floor((performance.now() - received) / 1000);
    tbody.querySelectorAll('tr[data-key]').forEach(function (row) {
      var age = Number(row.dataset.age) + elapsed;
      row.querySelector('.age').textContent = age + ' s';
      var windowS = row.dataset.revalidate;
      if (row.dataset.state === 'fresh' && windowS !== 'false' && age >= Number(windowS)) {
        row.dataset.state = 'stale';
        row.querySelector('.entry-state').textContent = 'stale';
      }
    });
  }
  function localize() {
    tbody.querySelectorAll('time').forEach(function (t) { t.textContent = localTime(t.dateTime); });
  }
  function flash(key) {
    tbody.querySelectorAll('tr[data-key]').forEach(function (row) {
      if (row.dataset.key !== key) return;
      row.classList.remove('changed');
      void row.offsetWidth; // restart the animation
      row.classList.add('changed');
    });
  }
  function describe(e) {
    switch (e.type) {
      case 'hit': return e.key + ' \\u00b7 age ' + e.age + ' s';
      case 'stale': return e.key + ' \\u00b7 age ' + e.age + ' s (' + e.reason + ')';
      case 'miss': return e.key + ' \\u00b7 rendering';
      case 'regenerate:start': return e.key;
      case 'regenerate:success': return e.key + ' \\u00b7 in ' + Math.round(e.duration) + ' ms, ' + e.bytes + ' bytes';
      case 'regenerate:error': return e.key + ' \\u00b7 ' + e.error + ' (attempt ' + e.attempt + ')';
      case 'revalidate': return e.paths.concat(e.tags.map(function (t) { return 'tag ' + t; })).join(', ') + ' \\u00b7 mode ' + e.mode + ', from ' + e.source;
      default: return '';
    }
  }
  function addLog(e) {
    var quiet = log.querySelector('.quiet');
    if (quiet) quiet.remove();
    var item = document.createElement('li');
    var when = document.createElement('time');
    when.textContent = localTime(e.at) + ' ';
    var type = document.createElement('span');
    type.className = 'type';
    type.textContent = e.type;
    item.append(when, type, ' ' + describe(e));
    log.prepend(item);
    while (log.children.length > 40) log.lastChild.remove();
  }

  var source = new EventSource('/admin/events');
  source.onopen = function () { panel.dataset.live = 'on'; live.textContent = 'live'; };
  source.onerror = function () { panel.dataset.live = 'off'; live.textContent = 'reconnecting\\u2026'; };
  source.addEventListener('cache', function (message) {
    var e = JSON.parse(message.data);
    addLog(e);
    if (e.key) flash(e.key);
  });
  source.addEventListener('entries', function (message) {
    var before = {};
    tbody.querySelectorAll('tr[data-key]').forEach(function (row) {
      before[row.dataset.key] = row.dataset.generatedAt + row.dataset.state;
    });
    tbody.innerHTML = JSON.parse(message.data).html;
    received = performance.now();
    localize();
    tick();
    tbody.querySelectorAll('tr[data-key]').forEach(function (row) {
      if (before[row.dataset.key] !== row.dataset.generatedAt + row.dataset.state) flash(row.dataset.key);
    });
  });
  source.addEventListener('problem', function (message) {
    result.textContent = 'The table could not be read: ' + JSON.parse(message.data).message;
  });

  document.getElementById('revalidate-form').addEventListener('submit', function (event) {
    event.preventDefault();
    var form = event.target;
    var target = document.getElementById('revalidate-target').value;
    var body = new URLSearchParams({ target: target, mode: event.submitter.value });
    result.textContent = 'Calling the webhook\\u2026';
    fetch(form.action, {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
      body: body
    }).then(function (response) { return response.json(); }).then(function (answer) {
      result.textContent = answer.error ? 'Failed: ' + answer.error
        : 'Webhook answered: ' + answer.mode + ' for ' + answer.paths.concat(answer.tags).join(', ') + '.';
    }, function (error) { result.textContent = 'Failed: ' + error; });
  });

  localize();
  setInterval(tick, 1000);
})();`;
