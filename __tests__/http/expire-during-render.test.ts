/**
 * Invalidations that arrive while a page is being rendered or stored. `mode: 'expire'`
 * (README: "never served again") holds for requests that
 * waited for a render that began before it, and for a page rendered just before it and still
 * being stored; `mode: 'stale'` does not stop a herd from sharing its one render.
 */
import type { RequestListener } from 'node:http';
import Keyv from 'keyv';
import { isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { listen } from '../helpers/http';
import { sleep, within } from '../helpers/time';

describe.each(expressVersions)(
  "a request made after revalidatePath(…, { mode: 'expire' }) while the page renders (%s)",
  (_name, createApp) => {
    test.each([
      ['through the middleware', false],
      ['behind cache.handler(app)', true],
    ])('%s: it must not get the removed content', async (_how, fastPath) => {
      const recorder = errorRecorder();
      const cache = isr({ onError: recorder.onError, logger: recorder.logger });
      const app = createApp();
      app.use(cache);
      let content = 'secret draft';
      const cmsAnswered = deferred();
      const fetched = deferred();
      let renders = 0;
      app.get('/post', async (_req, res) => {
        renders += 1;
        const text = content; // read from the CMS…
        if (renders === 1) {
          fetched.resolve();
          await cmsAnswered.promise; // …templates, other calls, slow
        }
        res.type('html').send(`<h1>${text}</h1>`);
      });
      const listener = (fastPath ? cache.handler(app as never) : app) as unknown as RequestListener;
      const server = await listen(listener);
      try {
        const before = server.get('/post'); // asked before the removal: may get the old page
        await fetched.promise;
        // The post is taken down, legally: `mode: 'expire'` — matching pages are never served
        // again; the next request renders (README, "Revalidate from your CMS").
        content = 'gone';
        await cache.revalidatePath('/post', { mode: 'expire' });
        const after = server.get('/post'); // asked after revalidatePath resolved
        await sleep(50);
        cmsAnswered.resolve();
        expect((await before).body).toBe('<h1>secret draft</h1>');
        expect((await after).body).not.toContain('secret draft');
      } finally {
        await server.close();
        await within(2000, cache.close());
      }
    });
  },
);

describe.each(expressVersions)(
  'invalidations while a page is stored or a herd waits (%s)',
  (_name, createApp) => {
    test("a page rendered just before an 'expire' and still being stored is not served after it", async () => {
      // A store whose writes wait for the test: the page stays "rendered, being stored".
      const writes = deferred();
      const map = new Map<string, unknown>();
      const slowStore = {
        get: async (key: string) => map.get(key),
        set: async (key: string, value: unknown) => {
          if (!String(key).includes('isr-clock:')) await writes.promise; // pages, not tag clocks
          map.set(key, value);
          return true;
        },
        delete: async (key: string) => map.delete(key),
        clear: async () => map.clear(),
      };
      const cache = isr({ store: new Keyv({ store: slowStore as never }) });
      const app = createApp();
      app.use(cache);
      let content = 'secret draft';
      app.get('/post', (_req, res) => {
        res.type('html').send(`<h1>${content}</h1>`);
      });
      const server = await listen(app as unknown as RequestListener);
      try {
        expect((await server.get('/post')).body).toBe('<h1>secret draft</h1>');
        content = 'gone';
        await cache.revalidatePath('/post', { mode: 'expire' });
        const after = await server.get('/post');
        expect(after.body).toBe('<h1>gone</h1>');
        expect(after.headers['x-isr-cache']).toBe('MISS');
      } finally {
        writes.resolve();
        await server.close();
        await within(2000, cache.close());
      }
    });

    test("a 'stale' invalidation during the render: the herd still shares its one render", async () => {
      const cache = isr();
      const app = createApp();
      let arrived = 0;
      const allArrived = deferred();
      app.use((_req, _res, next) => {
        arrived += 1;
        if (arrived === 6) allArrived.resolve();
        next();
      });
      app.use(cache);
      const release = deferred();
      const started = deferred();
      let renders = 0;
      app.get('/post', async (_req, res) => {
        renders += 1;
        started.resolve();
        await release.promise;
        res.type('html').send(`<h1>render ${renders}</h1>`);
      });
      const server = await listen(app as unknown as RequestListener);
      try {
        const first = server.get('/post');
        await started.promise;
        const herd = Array.from({ length: 5 }, () => server.get('/post'));
        // Every request is in (waiting for the render) before the invalidation: a request that
        // came after it may rightly start a render of its own.
        await allArrived.promise;
        await new Promise((resolve) => setImmediate(resolve));
        await cache.revalidatePath('/post'); // mode 'stale'
        release.resolve();
        const replies = await Promise.all([first, ...herd]);
        expect(renders).toBe(1);
        expect(new Set(replies.map((r) => r.body))).toEqual(new Set(['<h1>render 1</h1>']));
      } finally {
        await server.close();
        await within(2000, cache.close());
      }
    });
  },
);
