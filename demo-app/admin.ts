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
 * Access: HTTP Basic auth, any user name, the password is `ISR_SECRET`. Requests with
 * `Authorization` always bypass the cache (`x-isr-cache: BYPASS`), and every admin answer says
 * `Cache-Control: no-store` as well. The admin lives under `/admin/` (with the slash): browsers
 * re-send Basic credentials to everything under the directory that asked for them, which is
 * then `/admin/` and not `/`, so visiting the admin does not make the blog's own pages bypass
 * the cache for you. A real site would put its editors behind a real login.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import { adminEditPage, adminListPage, type Notice } from './admin-views';
import type { Cms, Post } from './cms';
import { callRevalidateWebhook, type RevalidateCall } from './webhook-client';

export interface AdminOptions {
  cms: Cms;
  secret: string;
  /** The site's webhook, e.g. `http://127.0.0.1:3000/api/revalidate` (known once listening). */
  webhookUrl: () => string;
  log: (line: string) => void;
}

type Done = 'saved' | 'unpublished' | 'published';

export function adminRouter(options: AdminOptions): Router {
  const { cms } = options;
  const router = express.Router();

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
    res.send(adminListPage(await cms.allPosts(), noticeFrom(req.query)));
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

function noticeFrom(query: Request['query']): Notice | undefined {
  const { done, slug, hook } = query;
  if (typeof done !== 'string' || typeof slug !== 'string') return undefined;
  if (hook === 'failed') {
    return { text: `“${slug}” is ${done} in the CMS, but the webhook call failed.`, error: true };
  }
  const effect =
    done === 'unpublished'
      ? 'its pages expired (mode expire): it is gone from the site.'
      : 'its pages are being re-rendered (mode regenerate): live within a second.';
  return { text: `“${slug}” ${done}. Webhook called for tag post-${slug}: ${effect}` };
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
