/**
 * Edges of background regeneration: a `mode: 'regenerate'` that finds an older regeneration
 * running, a re-render that is now too large or answers a stored non-2xx status, a cap on
 * stale-triggered regenerations, a slow uncacheable re-render racing a newer page, and a
 * cache with no app to regenerate through (Connect without the `app` option).
 */
import type { Request, Response } from 'express';
import request from 'supertest';
import { type IsrOptions, isRegeneration } from '../../lib';
import { MAX_CONCURRENT_REGENERATIONS } from '../../lib/regeneration/regenerator';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { recordedCache } from '../helpers/site';
import { sleep, waitFor } from '../helpers/time';

const cleanups: (() => Promise<void>)[] = [];

/** A cache on a fake clock with 10 s windows, its reports kept by `recorder`. */
function testCache(options: IsrOptions = {}) {
  const { clock, recorder, cache } = recordedCache({ revalidate: 10, ...options });
  return { cache, clock, recorder };
}
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe.each(expressVersions)(
  "mode 'regenerate' while a regeneration that began before it runs (%s)",
  (_name, createApp) => {
    test("revalidatePath(p, { mode: 'regenerate' }) resolves once the page is re-rendered after it: the next visitor gets the new page (HIT)", async () => {
      const { cache, clock } = testCache();
      const app = createApp();
      const content = { version: 'v1' };
      let gate: ReturnType<typeof deferred<void>> | undefined;
      let regenerations = 0;
      /** Holds the next render the cache makes (not a MISS's: the STALE's regeneration). */
      let holdNext = false;
      app.use(cache);
      app.get('/post', async (req: Request, res: Response) => {
        const version = content.version; // read when the render starts, like a CMS fetch
        if (isRegeneration(req) && holdNext) {
          holdNext = false;
          regenerations += 1;
          if (gate) await gate.promise;
        }
        res.send(`<p>${version}</p>`);
      });
      cleanups.push(async () => {
        gate?.resolve();
        await cache.close();
      });

      expect((await request(app).get('/post')).headers['x-isr-cache']).toBe('MISS');
      await cache.idle();

      // The window passes; a visitor triggers a background regeneration that reads v1 and is slow.
      clock.advanceSeconds(11);
      gate = deferred();
      holdNext = true;
      const stale = await request(app).get('/post');
      expect(stale.headers['x-isr-cache']).toBe('STALE');
      await waitFor('the slow regeneration to start', () => regenerations === 1);

      // The CMS publishes v2 and asks for the pages to be re-rendered now.
      content.version = 'v2';
      clock.advance(5);
      const revalidated = cache.revalidatePath('/post', { mode: 'regenerate' });
      await sleep(20);
      gate.resolve(); // the old regeneration (which read v1) ends
      gate = undefined;
      await revalidated;

      // README: "regenerate: ... the call waits for them, so the next visitor gets the new page".
      const next = await request(app).get('/post');
      expect({ state: next.headers['x-isr-cache'], body: next.text }).toEqual({
        state: 'HIT',
        body: '<p>v2</p>',
      });
    });
  },
);

describe.each(expressVersions)(
  'a regeneration answering 2xx but larger than maxBodySize (%s)',
  (_name, createApp) => {
    test('the entry is removed (README: "regeneration answers 2xx but the page is no longer cacheable → the entry is removed")', async () => {
      const { cache, clock, recorder } = testCache({ maxBodySize: 1000 });
      const app = createApp();
      let big = false;
      app.use(cache);
      app.get('/page', (_req: Request, res: Response) => {
        res.send(big ? `<p>${'x'.repeat(5000)}</p>` : '<p>small</p>');
      });
      cleanups.push(() => cache.close());

      expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      big = true; // the page grew past maxBodySize: it is no longer cacheable
      clock.advanceSeconds(11);
      expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
      await cache.idle();

      const next = await request(app).get('/page');
      expect(next.headers['x-isr-cache']).not.toBe('STALE'); // the live answer, not the old copy
      expect(next.text).toContain('x'.repeat(5000));
      expect(recorder.errors).toEqual([]); // a page that is merely too large is no error
    });
  },
);

describe.each(expressVersions)(
  'a regeneration answering a non-2xx status listed in statuses (%s)',
  (_name, createApp) => {
    test('a cached 404 (statuses: [200, 404]) is refreshed by a regeneration answering 404, with no error reported', async () => {
      const { cache, clock, recorder } = testCache({ statuses: [200, 404] });
      const app = createApp();
      app.use(cache);
      app.get('/missing', (_req: Request, res: Response) => {
        res.status(404).send('<p>no such post</p>');
      });
      cleanups.push(() => cache.close());

      const first = await request(app).get('/missing');
      expect([first.status, first.headers['x-isr-cache']]).toEqual([404, 'MISS']);
      await cache.idle();
      expect((await request(app).get('/missing')).headers['x-isr-cache']).toBe('HIT');

      clock.advanceSeconds(11);
      expect((await request(app).get('/missing')).headers['x-isr-cache']).toBe('STALE');
      await cache.idle();

      expect(recorder.errors.map((e) => e.error.message)).toEqual([]);
      expect((await request(app).get('/missing')).headers['x-isr-cache']).toBe('HIT');
    });
  },
);

describe.each(expressVersions)(
  'stale-triggered regenerations have a concurrency cap (%s)',
  (_name, createApp) => {
    test(`20 stale pages visited at once start at most ${MAX_CONCURRENT_REGENERATIONS} renders at a time; later visits regenerate the rest`, async () => {
      const { cache, clock } = testCache();
      const app = createApp();
      let gate: ReturnType<typeof deferred<void>> | undefined;
      const active = { now: 0, max: 0 };
      app.use(cache);
      app.get('/p/:n', async (req: Request, res: Response) => {
        if (isRegeneration(req) && gate) {
          active.now += 1;
          active.max = Math.max(active.max, active.now);
          await gate.promise;
          active.now -= 1;
        }
        res.send(`<p>${req.params.n}</p>`);
      });
      cleanups.push(async () => {
        gate?.resolve();
        await cache.close();
      });
      const urls = Array.from({ length: 20 }, (_, i) => `/p/${i}`);
      for (const url of urls) await request(app).get(url);
      await cache.idle();

      clock.advanceSeconds(11);
      gate = deferred();
      // e.g. a crawler, or the first visitors after revalidatePath('/', { type: 'layout' })
      await Promise.all(urls.map((url) => request(app).get(url)));
      await sleep(30);
      const atOnce = active.max;
      gate.resolve();
      await cache.idle();
      // At most MAX_CONCURRENT_REGENERATIONS at once (README, "How it behaves"): a burst of
      // stale pages cannot turn into a burst of renders.
      expect(atOnce).toBe(MAX_CONCURRENT_REGENERATIONS);
      // The pages left out are still STALE; the next visits regenerate them.
      for (const url of urls) await request(app).get(url);
      await cache.idle();
      for (const url of urls)
        expect((await request(app).get(url)).headers['x-isr-cache']).toBe('HIT');
    });
  },
);

describe.each(expressVersions)(
  'a slow regeneration that turns out uncacheable, racing a newer page (%s)',
  (_name, createApp) => {
    test('a slow regeneration that turns out uncacheable does not delete the page a later MISS stored', async () => {
      const { cache, clock } = testCache();
      const app = createApp();
      let gate: ReturnType<typeof deferred<void>> | undefined;
      let cookieCampaign = false;
      let regenerations = 0;
      /** Holds the next render the cache makes (the STALE's regeneration, not a MISS's). */
      let holdNext = false;
      app.use(cache);
      app.get('/page', async (req: Request, res: Response) => {
        const withCookie = cookieCampaign; // decided when the render starts
        if (isRegeneration(req) && holdNext) {
          holdNext = false;
          regenerations += 1;
          if (gate) await gate.promise;
        }
        if (withCookie) res.cookie('ab', 'b');
        res.send('<p>page</p>');
      });
      cleanups.push(async () => {
        gate?.resolve();
        await cache.close();
      });

      await request(app).get('/page');
      await cache.idle();
      clock.advanceSeconds(11);
      cookieCampaign = true;
      gate = deferred();
      holdNext = true;
      expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
      await waitFor('the regeneration to start', () => regenerations === 1);

      // The campaign ends; the page is expired and a visitor renders and stores a new one.
      cookieCampaign = false;
      clock.advance(5);
      await cache.revalidatePath('/page', { mode: 'expire' });
      expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('MISS');
      // (not idle(): it would wait for the held regeneration) the MISS's store lands:
      await waitFor(
        'the MISS stored (a HIT)',
        async () => (await request(app).get('/page')).headers['x-isr-cache'] === 'HIT',
        2000,
        5,
      );

      gate.resolve(); // the old regeneration ends, with a Set-Cookie
      gate = undefined;
      await cache.idle();
      // engine.save: "An entry never replaces one rendered later"; removal should not either.
      expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('HIT');
    });
  },
);

describe('with no app to render through (Connect or node:http without the app option)', () => {
  test("nothing is cached: each visitor gets the app's own answer, and ISR_NO_APP says why, once", async () => {
    const { cache, recorder } = testCache();
    cleanups.push(() => cache.close());
    let renders = 0;
    const handler = (
      req: import('node:http').IncomingMessage,
      res: import('node:http').ServerResponse,
    ) =>
      cache(req, res, () => {
        renders += 1;
        res.setHeader('content-type', 'text/html');
        res.end('<p>page</p>');
      });
    for (let i = 0; i < 3; i += 1) {
      const page = await request(handler).get('/page');
      expect(page.headers['x-isr-cache']).toBe('BYPASS');
      expect(page.text).toBe('<p>page</p>');
    }
    expect(renders).toBe(3);
    const warned = recorder.warnings.filter((args) => String(args[0]).includes('ISR_NO_APP'));
    expect(warned).toHaveLength(1);
    expect(recorder.errors).toHaveLength(0);
  });
});
