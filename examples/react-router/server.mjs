// React Router (framework mode) served by Express, with express-isr in front of it.
// Build the app first: see README.md.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { createRequestHandler } from '@react-router/express';
import express from 'express';
import { isr, revalidateRouter } from 'express-isr';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

/**
 * The app, not yet listening: `postsFile` is the stand-in CMS, every other option goes to
 * isr() (a test passes its own clock as `now`).
 */
export async function createApp({ postsFile = here('./posts.json'), ...options } = {}) {
  const build = await import('./build/server/index.mjs');
  const app = express();
  app.disable('x-powered-by');

  // First, so that it sees every request; its own renders go through everything below it.
  // The pages say `s-maxage=60` for a CDN; the window is given here too. `user` is the
  // cookie that makes a page personal: the framework copies every request header for each
  // render, so the cache cannot tell by itself which pages read cookies, and without it any
  // cookie (analytics, consent) would keep a visitor from the cached pages.
  const cache = isr({ revalidate: 60, sessionCookies: ['user'], ...options });
  app.use(cache);

  const secret = process.env.ISR_SECRET ?? 'dev-only-secret-change-me-0123456789abcdef';
  app.use('/api/revalidate', revalidateRouter(cache, { secret }));

  // The client build: fingerprinted files, served as they are (the cache passes them through).
  app.use(
    '/assets',
    express.static(here('./build/client/assets'), { immutable: true, maxAge: '1y' }),
  );
  app.use(express.static(here('./build/client'), { maxAge: '1h' }));

  app.all(
    '*splat',
    createRequestHandler({
      build,
      getLoadContext: () => ({
        posts: async () => JSON.parse(await readFile(postsFile, 'utf8')),
      }),
    }),
  );
  return { app, cache };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { app } = await createApp();
  const port = Number(process.env.PORT ?? 3000);
  const server = app.listen(port, () => {
    console.log(`React Router with express-isr on http://localhost:${server.address().port}`);
  });
}
