/**
 * The express-isr demo: a small blog whose pages are rendered once, served from the cache,
 * and regenerated in the background. Start it with `npm run demo`, then:
 *   curl -i http://localhost:3000/blog/hello   # x-isr-cache: MISS (rendered, ~300 ms)
 *   curl -i http://localhost:3000/blog/hello   # x-isr-cache: HIT  (from the cache)
 * Pages revalidate after REVALIDATE seconds (default 10): the next request gets STALE at once
 * and a fresh page is rendered in the background.
 */
import express from 'express';
import { isr } from '../lib';
import { findPost, listPosts, type Post } from './content';

const port = Number(process.env.PORT ?? 3000);
const revalidate = Number(process.env.REVALIDATE ?? 10);

const app = express();
const cache = isr({ revalidate });
app.use(cache);

app.get('/', async (_req, res) => {
  const posts = await listPosts();
  res.isr({ tags: ['posts'] });
  res.send(
    layout(
      'express-isr demo blog',
      `<ul>${posts.map((p) => `<li><a href="/blog/${p.slug}">${escapeHtml(p.title)}</a></li>`).join('')}</ul>`,
    ),
  );
});

app.get('/blog/:slug', async (req, res, next) => {
  const post = await findPost(req.params.slug);
  if (post === undefined) return next();
  res.isr({ tags: ['posts', `post-${post.slug}`] });
  res.send(layout(post.title, postBody(post)));
});

app.get('/about', (_req, res) => {
  res.isr({ revalidate: false }); // only on demand: this page never changes by itself
  res.send(layout('About', '<p>A demo of Incremental Static Regeneration for Express.</p>'));
});

app.use((_req, res) => {
  res.status(404).send(layout('Not found', '<p>No such page.</p>'));
});

function postBody(post: Post): string {
  const tags = post.tags.map((t) => `<span class="tag">${escapeHtml(t)}</span>`).join(' ');
  return `<article><p>${escapeHtml(post.body)}</p><p>${tags}</p></article><p><a href="/">← all posts</a></p>`;
}

function layout(title: string, main: string): string {
  const generated = new Date().toISOString();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}
footer{margin-top:3rem;color:#777;font-size:.85rem}.tag{background:#eef;padding:0 .4rem;border-radius:.3rem}</style>
</head><body><h1>${escapeHtml(title)}</h1>${main}
<footer>Generated at <time datetime="${generated}">${generated}</time>
(<span id="age"></span>). The response's <code>x-isr-cache</code> header says whether it was a
HIT, STALE or MISS: <code>curl -i</code> shows it.</footer>
<script>document.getElementById('age').textContent=Math.round((Date.now()-Date.parse('${generated}'))/1000)+' s ago'</script>
</body></html>`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const server = app.listen(port, () => {
  console.log(
    `express-isr demo on http://localhost:${port} (memory store, revalidate ${revalidate}s)`,
  );
});

function shutdown() {
  server.close();
  cache.close().then(() => process.exit(0));
}
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
