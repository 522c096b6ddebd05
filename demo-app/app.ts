/**
 * The blog, wired as the README tells users to: `isr()` mounted before the routes, each route
 * tagging its response with `res.isr({ tags })`, and the revalidate router at
 * `/api/revalidate`.
 *
 * Tags: every page that shows a post carries `post-<slug>` — the post's page, the home page,
 * the topic pages listing it — so one webhook call with that tag refreshes all of them.
 * Listings also carry `posts`, for when a post appears.
 */
import { performance } from 'node:perf_hooks';
import express, { type Express, type Response } from 'express';
import { type IsrMiddleware, isr, revalidateRouter } from '../lib';
import { adminRouter } from './admin';
import type { Cms, Post } from './cms';
import type { DemoConfig } from './config';
import { cacheStateTiming } from './server-timing';
import {
  aboutPage,
  FAVICON_SVG,
  homePage,
  notFoundPage,
  postPage,
  type RenderInfo,
  topicPage,
} from './views';

export interface Demo {
  app: Express;
  cache: IsrMiddleware;
}

export function createDemoApp(
  config: DemoConfig,
  cms: Cms,
  siteUrl: () => string,
  log: (line: string) => void,
): Demo {
  const app = express();
  app.disable('x-powered-by');
  app.use(cacheStateTiming()); // before isr(): see server-timing.ts
  const cache = isr({ revalidate: config.revalidate, store: config.redisUrl });
  app.use(cache);
  // After isr(): runs for the renders the cache makes (a MISS, a regeneration, a prerender),
  // not for replays, so "rendered in" is the time of the render that produced the HTML.
  app.use((_req, res, next) => {
    res.locals.renderStartedAt = performance.now();
    next();
  });
  const rendered = (res: Response, revalidate: number | false = config.revalidate): RenderInfo => ({
    renderMs: performance.now() - (res.locals.renderStartedAt as number),
    revalidate,
  });

  // Pages name their icon inline (views.ts), so browsers do not ask for this; it is here for
  // whatever asks anyway (a bookmark, a feed reader, curl), instead of a 404. Not stored by
  // the cache (it keeps text/html only), and it needs no render: the browser keeps it a day.
  app.get('/favicon.ico', (_req, res) => {
    res.type('image/svg+xml').set('cache-control', 'public, max-age=86400').send(FAVICON_SVG);
  });

  app.get('/', async (_req, res) => {
    const posts = await cms.listPosts();
    res.isr({ tags: ['posts', ...posts.map(postTag)] });
    res.send(homePage(posts, rendered(res)));
  });

  app.get('/blog/:slug', async (req, res, next) => {
    const post = await cms.findPost(req.params.slug);
    if (post === undefined) return next(); // unpublished or unknown: 404, never stored
    res.isr({ tags: [postTag(post)] });
    res.send(postPage(post, rendered(res)));
  });

  app.get('/topics/:topic', async (req, res, next) => {
    const posts = (await cms.listPosts()).filter((p) => p.topics.includes(req.params.topic));
    if (posts.length === 0) return next();
    res.isr({ tags: ['posts', ...posts.map(postTag)] });
    res.send(topicPage(req.params.topic, posts, rendered(res)));
  });

  app.get('/about', (_req, res) => {
    res.isr({ revalidate: false }); // only on demand: nothing on it changes by itself
    res.send(aboutPage(rendered(res, false)));
  });

  app.use('/api/revalidate', revalidateRouter(cache, { secret: config.secret }));
  app.use(
    '/admin',
    adminRouter({
      cms,
      cache,
      secret: config.secret,
      webhookUrl: () => `${siteUrl()}/api/revalidate`,
      log,
    }),
  );

  app.use((_req, res) => {
    res.status(404).send(notFoundPage());
  });

  return { app, cache };
}

export function postTag(post: Pick<Post, 'slug'>): string {
  return `post-${post.slug}`;
}

/** What is rendered before the server listens: the home page, the about page, the newest posts. */
export async function prerenderPaths(config: DemoConfig, cms: Cms): Promise<string[]> {
  const newest = (await cms.listPosts()).slice(0, config.prerenderPosts);
  return ['/', '/about', ...newest.map((post) => `/blog/${post.slug}`)];
}
