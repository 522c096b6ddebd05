/**
 * `/admin`: the CMS's editing screen. Lists the posts, edits a title or body, unpublishes or
 * publishes a post; every change is written to the CMS, then announced to the site through the
 * revalidate webhook over HTTP (see `webhook-client.ts`).
 *
 * Which mode, and why:
 * - an edit sends `mode: 'regenerate'` for the post's tag: the pages showing the post (its
 *   page, the home page, its topic pages) are marked stale AND re-rendered at once in the
 *   background, so the new version is in the cache about one CMS fetch later (300 ms by
 *   default) — live within a second, before any visitor comes. With `'stale'` the first
 *   visitor after the save would still get the old page (STALE) and only the next one the
 *   new page.
 * - unpublishing sends `mode: 'expire'`: the old page must never be served again, not even
 *   once as STALE; the next visitor gets a fresh render, which is a 404 for the post and a
 *   listing without it.
 * - publishing again sends `'regenerate'` for `posts` too, since the listings that will show
 *   the post do not carry its tag yet.
 *
 * The list page also holds the live cache panel (`cache-panel.ts`): the cached pages, the
 * cache's events over Server-Sent Events at `/admin/events`, and buttons that send the
 * webhook's three modes for a page or a tag (`POST /admin/revalidate`).
 *
 * Access: HTTP Basic auth, any user name, the password is `ISR_SECRET`. Requests with
 * `Authorization` always bypass the cache (`x-isr-cache: BYPASS`), and every admin answer says
 * `Cache-Control: no-store` as well. The admin lives under `/admin/` (with the slash): browsers
 * re-send Basic credentials to everything under the directory that asked for them, which is
 * then `/admin/` and not `/`, so visiting the admin does not make the blog's own pages bypass
 * the cache for you. A real site would put its editors behind a real login.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import type { IsrMiddleware, RevalidateMode } from '../lib';
import { adminEditPage, adminListPage, cacheRows, type Notice } from './admin-views';
import { cachePanel } from './cache-panel';
import type { Cms, Post } from './cms';
import { callRevalidateWebhook, type RevalidateCall } from './webhook-client';

export interface AdminOptions {
  cms: Cms;
  /** The site's cache, for the panel: read and watched, never changed directly. */
  cache: IsrMiddleware;
  secret: string;
  /** The site's webhook, e.g. `http://127.0.0.1:3000/api/revalidate` (known once listening). */
  webhookUrl: () => string;
  log: (line: string) => void;
}

type Done = 'saved' | 'unpublished' | 'published';
const MODES: readonly RevalidateMode[] = ['stale', 'expire', 'regenerate'];

export function adminRouter(options: AdminOptions): Router {
  const { cms } = options;
  const router = express.Router();
  const panel = cachePanel(options.cache);

  router.use((req, res, next) => {
    res.set('cache-control', 'no-store');
    const path = req.originalUrl.split('?')[0];
    if (path === '/admin' && (req.method === 'GET' || req.method === 'HEAD')) {
      res.redirect(301, `/admin/${req.originalUrl.slice(path.length)}`);
      return;
    }
    next();
  });
  router.use(basicAuth(options.secret));
  router.use(sameOriginPosts);
  router.use(express.urlencoded({ extended: false, limit: '100kb' }));

  router.get('/', async (req, res) => {
    const [posts, snapshot] = await Promise.all([cms.allPosts(), panel.snapshot()]);
    res.send(adminListPage(posts, snapshot, noticeFrom(req.query, posts)));
  });

  router.get('/events', (req, res) => {
    panel.stream(req, res, cacheRows);
  });

  /**
   * The panel's buttons: one webhook call for a path (starts with `/`) or a tag, in the mode
   * of the button. Through the webhook, as the CMS does, so the panel shows what a real
   * invalidation does. The page's script asks for JSON and stays open; a plain form post
   * (no JavaScript) comes back to the list with a notice.
   */
  router.post('/revalidate', async (req, res) => {
    const target = String(req.body?.target ?? '').trim();
    const mode = String(req.body?.mode ?? '') as RevalidateMode;
    const wantsJson = req.accepts(['html', 'json']) === 'json';
    if (target === '' || target.length > 300 || !MODES.includes(mode)) {
      const error = `Give a path or a tag (at most 300 characters) and a mode: ${MODES.join(', ')}.`;
      if (wantsJson) res.status(400).json({ error });
      else res.status(400).send(error);
      return;
    }
    const call: RevalidateCall = target.startsWith('/')
      ? { paths: [target], mode }
      : { tags: [target], mode };
    let hook = 'ok';
    try {
      const answer = await callRevalidateWebhook(options.webhookUrl(), options.secret, call);
      options.log(`admin: revalidate ${target}; webhook ${JSON.stringify(answer)}`);
      if (wantsJson) {
        res.json(answer);
        return;
      }
    } catch (error) {
      hook = 'failed';
      options.log(`admin: revalidate ${target}, but the webhook failed: ${error}`);
      if (wantsJson) {
        res.status(502).json({ error: String(error instanceof Error ? error.message : error) });
        return;
      }
    }
    const query = new URLSearchParams({ done: 'revalidated', target, mode, hook });
    res.redirect(303, `/admin/?${query}`);
  });

  router.get('/posts/:slug', async (req, res, next) => {
    const post = (await cms.allPosts()).find((p) => p.slug === req.params.slug);
    if (post === undefined) return next();
    res.send(adminEditPage(post));
  });

  router.post('/posts/:slug', async (req, res, next) => {
    const title = String(req.body?.title ?? '').trim();
    const body = String(req.body?.body ?? '')
      .replace(/\r\n/g, '\n')
      .trim();
    if (title === '' || title.length > 200 || body.length > 20_000) {
      res.status(400).send('A post needs a title (at most 200 characters) and a body (20,000).');
      return;
    }
    const post = await cms.updatePost(req.params.slug as string, { title, body });
    if (post === undefined) return next();
    await announce(res, post, 'saved', { tags: [`post-${post.slug}`], mode: 'regenerate' });
  });

  router.post('/posts/:slug/unpublish', async (req, res, next) => {
    const post = await cms.updatePost(req.params.slug as string, { published: false });
    if (post === undefined) return next();
    await announce(res, post, 'unpublished', { tags: [`post-${post.slug}`], mode: 'expire' });
  });

  router.post('/posts/:slug/publish', async (req, res, next) => {
    const post = await cms.updatePost(req.params.slug as string, { published: true });
    if (post === undefined) return next();
    const call: RevalidateCall = { tags: ['posts', `post-${post.slug}`], mode: 'regenerate' };
    await announce(res, post, 'published', call);
  });

  /** Calls the webhook, then sends the editor back to the list with what happened. */
  async function announce(res: Response, post: Post, done: Done, call: RevalidateCall) {
    let hook = 'ok';
    try {
      const answer = await callRevalidateWebhook(options.webhookUrl(), options.secret, call);
      options.log(`admin: ${done} ${post.slug}; webhook ${JSON.stringify(answer)}`);
    } catch (error) {
      hook = 'failed';
      options.log(`admin: ${done} ${post.slug}, but the webhook failed: ${error}`);
    }
    res.redirect(303, `/admin/?done=${done}&slug=${encodeURIComponent(post.slug)}&hook=${hook}`);
  }

  return router;
}

/**
 * The notice after a change, from the redirect's query. The post is named by its title, as
 * the editor knows it, looked up by slug in the CMS (the query only carries the slug, so a
 * crafted link cannot put words of its own in the notice).
 */
function noticeFrom(query: Request['query'], posts: Post[]): Notice | undefined {
  const { done, slug, hook, target, mode } = query;
  if (done === 'revalidated' && typeof target === 'string' && typeof mode === 'string') {
    if (hook === 'failed') return { text: `The webhook call for ${target} failed.`, error: true };
    return { text: `Webhook called for ${target} (mode ${mode}).` };
  }
  if (typeof done !== 'string' || typeof slug !== 'string') return undefined;
  const post = posts.find((p) => p.slug === slug);
  if (post === undefined) return undefined;
  if (hook === 'failed') {
    return {
      text: `“${post.title}” is ${done} in the CMS, but the webhook call failed.`,
      error: true,
    };
  }
  const effect =
    done === 'unpublished'
      ? 'its pages expired (mode expire): it is gone from the site.'
      : 'its pages are being re-rendered (mode regenerate): live within a second.';
  return { text: `“${post.title}” ${done}. Webhook called for tag post-${slug}: ${effect}` };
}

function basicAuth(secret: string) {
  const expected = digest(secret);
  return (req: Request, res: Response, next: NextFunction) => {
    const encoded = /^Basic\s+(\S+)$/i.exec(req.get('authorization') ?? '')?.[1];
    const decoded = encoded === undefined ? '' : Buffer.from(encoded, 'base64').toString('utf8');
    const password = decoded.slice(decoded.indexOf(':') + 1);
    if (encoded !== undefined && timingSafeEqual(digest(password), expected)) return next();
    res.set('www-authenticate', 'Basic realm="express-isr demo admin", charset="UTF-8"');
    res.status(401).send('The admin needs the password: ISR_SECRET (any user name).');
  };
}

/** A form posted from another site is refused (CSRF): browsers send `Origin` with POSTs. */
function sameOriginPosts(req: Request, res: Response, next: NextFunction) {
  const origin = req.get('origin');
  if (req.method === 'POST' && origin !== undefined) {
    let host: string | undefined;
    try {
      host = new URL(origin).host;
    } catch {}
    if (host !== req.get('host')) {
      res.status(403).send('Cross-site form posts are refused.');
      return;
    }
  }
  next();
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}
