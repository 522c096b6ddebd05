/**
 * `cache.prerender(paths, { concurrency })` (Next.js's `generateStaticParams` idea): pages
 * rendered through the app ahead of their first visitor and stored, one render per unique
 * path, results in the order given; a fresh page is left alone; uncacheable and failing
 * renders are reported per path (failures to `onError` too); `concurrency` bounds the renders
 * in flight; the render sees the configured host and no client headers; input is checked;
 * two instances sharing Redis render each page once in total; a store outage is a failure.
 */
import type { IncomingHttpHeaders } from 'node:http';
import KeyvRedis from '@keyv/redis';
import type { Express } from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrMiddleware, type IsrOptions, isr, type PrerenderResult } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { lateReader } from '../helpers/late-reader';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { recordedCache } from '../helpers/site';
import { fakeClock, sleep, waitFor } from '../helpers/time';

/** Rejections and synchronous throws alike, so either way of refusing input is accepted. */
function attempt<T>(fn: () => Promise<T>): Promise<T> {
  return Promise.resolve().then(fn);
}

/** A Map-shaped Keyv storage adapter whose every call fails: a store that is down. */
function downAdapter() {
  const down = async () => {
    throw new Error('adapter is down');
  };
  return { get: down, set: down, delete: down, clear: async () => {} };
}

/** Counts renders per path on an app; `ok` pages are cacheable HTML naming their render. */
function routes(app: Express, renders: Map<string, number>) {
  const rendered = (path: string) => {
    const n = (renders.get(path) ?? 0) + 1;
    renders.set(path, n);
    return n;
  };
  for (const path of ['/a', '/b', '/c']) {
    app.get(path, async (_req, res) => {
      const n = rendered(path);
      await sleep(5);
      res.type('html').send(`<h1>${path} render ${n}</h1>`);
    });
  }
  return rendered;
}

describe.each(expressVersions)('cache.prerender() (%s)', (_name, createApp) => {
  const opened: IsrMiddleware[] = [];
  afterEach(async () => {
    for (const cache of opened.splice(0)) await cache.close();
  });

  function setup(options: IsrOptions = {}) {
    const { clock, recorder, cache } = recordedCache(options);
    opened.push(cache);
    const app = createApp();
    const renders = new Map<string, number>();
    app.use(cache);
    const rendered = routes(app, renders);
    /** The request headers each render of a path saw, last one kept. */
    const headersSeen = new Map<string, IncomingHttpHeaders>();
    app.get('/slow', async (_req, res) => {
      const n = rendered('/slow');
      await sleep(40);
      res.type('html').send(`<h1>slow render ${n}</h1>`);
    });
    app.get('/cookie', (_req, res) => {
      rendered('/cookie');
      res.cookie('session', 'abc');
      res.type('html').send('<h1>with a cookie</h1>');
    });
    app.get('/status500', (_req, res) => {
      rendered('/status500');
      res.status(500).type('html').send('<h1>oops</h1>');
    });
    app.get('/throws', () => {
      rendered('/throws');
      throw new Error('kaboom in the route');
    });
    app.get('/gone', (_req, res) => {
      rendered('/gone');
      res.status(404).type('html').send('<h1>not here</h1>');
    });
    app.get('/headers', (req, res) => {
      rendered('/headers');
      headersSeen.set('/headers', { ...req.headers });
      res.type('html').send(`<a href="https://${req.headers.host}/about">about</a>`);
    });
    return {
      app,
      cache,
      clock,
      recorder,
      headersSeen,
      renders: (path: string) => renders.get(path) ?? 0,
    };
  }

  test('renders each unique path once, results in the order given, and the next GET is a HIT', async () => {
    const { app, cache, renders } = setup();
    // Seen by a request first, so the cache knows the app.
    await request(app).get('/c');
    await cache.idle();

    const results = await cache.prerender(['/a', '/b', '/a'], { concurrency: 2 });
    expect(results).toEqual([
      { path: '/a', outcome: 'stored' },
      { path: '/b', outcome: 'stored' },
    ]);
    expect(renders('/a')).toBe(1);
    expect(renders('/b')).toBe(1);

    for (const path of ['/a', '/b']) {
      const hit = await request(app).get(path);
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe(`<h1>${path} render 1</h1>`);
    }
    expect(renders('/a')).toBe(1);
    expect(renders('/b')).toBe(1);
  });

  test('results follow the input order, not the order renders finish', async () => {
    const { app, cache } = setup();
    const results = await cache.prerender(['/slow', '/a', '/b'], { concurrency: 3, app });
    expect(results.map((r: PrerenderResult) => r.path)).toEqual(['/slow', '/a', '/b']);
    expect(results.map((r: PrerenderResult) => r.outcome)).toEqual(['stored', 'stored', 'stored']);
  });

  test('a page already fresh is left alone (fresh, no render); a stale one is rendered again', async () => {
    const { app, cache, clock, renders } = setup();
    const miss = await request(app).get('/a');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();

    expect(await cache.prerender(['/a'])).toEqual([{ path: '/a', outcome: 'fresh' }]);
    expect(renders('/a')).toBe(1);

    clock.advanceSeconds(61);
    expect(await cache.prerender(['/a'])).toEqual([{ path: '/a', outcome: 'stored' }]);
    expect(renders('/a')).toBe(2);
    const hit = await request(app).get('/a');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>/a render 2</h1>');
  });

  test('a route that sets a cookie is uncacheable, with the reason, and nothing is stored', async () => {
    const { app, cache, renders } = setup();
    const [result] = await cache.prerender(['/cookie'], { app });
    expect(result).toEqual({
      path: '/cookie',
      outcome: 'uncacheable',
      reason: expect.stringMatching(/cookie/i),
    });
    expect(renders('/cookie')).toBe(1);

    const visit = await request(app).get('/cookie');
    expect(visit.headers['x-isr-cache']).not.toBe('HIT');
    expect(renders('/cookie')).toBe(2);
  });

  test.each([
    ['/status500', /500/],
    ['/throws', /kaboom in the route/],
    ['/gone', /404/],
    ['/nowhere/at/all', /./],
  ])(
    'a render of %s that fails is `failed` with its reason, and reported to onError',
    async (path, reason) => {
      const { app, cache, recorder } = setup();
      const results = await cache.prerender([path, '/a'], { app });
      expect(results).toEqual([
        { path, outcome: 'failed', reason: expect.stringMatching(reason) },
        { path: '/a', outcome: 'stored' }, // one failure does not stop the others
      ]);
      const reported = recorder.errors.filter((e) => e.context.phase === 'prerender');
      expect(reported).toHaveLength(1);
      expect(reported[0].context.key).toBe(path);
      expect(reported[0].error.message).toMatch(reason);

      // Nothing was stored for it: a visitor's request renders.
      const visit = await request(app).get(path);
      expect(visit.headers['x-isr-cache']).not.toBe('HIT');
    },
  );

  test('concurrency bounds the renders in flight: 3 at once for 10 paths', async () => {
    const { app, cache } = setup();
    let active = 0;
    let most = 0;
    const started: string[] = [];
    const gate = deferred();
    app.get('/p/:id', async (req, res) => {
      active += 1;
      most = Math.max(most, active);
      started.push(req.params.id);
      await gate.promise;
      await sleep(2);
      active -= 1;
      res.type('html').send(`<h1>p ${req.params.id}</h1>`);
    });
    const paths = Array.from({ length: 10 }, (_, i) => `/p/${i}`);
    const running = cache.prerender(paths, { concurrency: 3, app });

    await waitFor('three renders are in flight', () => active === 3);
    await sleep(30); // room for a fourth to start, if the bound were not kept
    expect(active).toBe(3);
    expect(started).toHaveLength(3);
    gate.resolve();

    const results = await running;
    expect(results.map((r: PrerenderResult) => r.outcome)).toEqual(Array(10).fill('stored'));
    expect(most).toBe(3);
    expect(started.sort()).toEqual(paths.map((p) => p.slice(3)).sort());
  });

  test('with no app known (no request yet, no app option) it is a TypeError naming app', async () => {
    const { cache, renders } = setup();
    await expect(attempt(() => cache.prerender(['/a']))).rejects.toThrow(TypeError);
    await expect(attempt(() => cache.prerender(['/a']))).rejects.toThrow(/\bapp\b/);
    expect(renders('/a')).toBe(0);
  });

  test('with { app } it works before any request; with isr({ app }) too', async () => {
    const first = setup();
    expect(await first.cache.prerender(['/a'], { app: first.app })).toEqual([
      { path: '/a', outcome: 'stored' },
    ]);
    const hit = await request(first.app).get('/a');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(first.renders('/a')).toBe(1);

    // The app option: the cache is created before the app, so it is given afterwards.
    const clock = fakeClock();
    const app = createApp();
    const renders = new Map<string, number>();
    const cache = isr({ now: clock.now, app });
    opened.push(cache);
    app.use(cache);
    routes(app, renders);
    expect(await cache.prerender(['/b'])).toEqual([{ path: '/b', outcome: 'stored' }]);
    const hitB = await request(app).get('/b');
    expect(hitB.headers['x-isr-cache']).toBe('HIT');
    expect(renders.get('/b')).toBe(1);
  });

  test('the render sees the host option as Host and no client headers', async () => {
    const { app, cache, headersSeen } = setup({ host: 'www.example.com' });
    expect(await cache.prerender(['/headers'], { app })).toEqual([
      { path: '/headers', outcome: 'stored' },
    ]);
    const seen = headersSeen.get('/headers');
    expect(seen?.host).toBe('www.example.com');
    // Only what the cache itself sets: no cookie, user agent, language, forwarded address…
    expect(Object.keys(seen ?? {}).filter((h) => h !== 'host' && h !== 'accept-encoding')).toEqual(
      [],
    );

    const hit = await request(app).get('/headers').set('Host', 'attacker.example');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<a href="https://www.example.com/about">about</a>');
  });

  test('invalid input is a TypeError and renders nothing', async () => {
    const { app, cache, renders } = setup();
    await expect(attempt(() => cache.prerender('x' as never, { app }))).rejects.toThrow(TypeError);
    await expect(attempt(() => cache.prerender(['no-slash'], { app }))).rejects.toThrow(TypeError);
    await expect(attempt(() => cache.prerender(['/a', 42 as never], { app }))).rejects.toThrow(
      TypeError,
    );
    await expect(attempt(() => cache.prerender(['/a'], { app, concurrency: 0 }))).rejects.toThrow(
      TypeError,
    );
    await expect(attempt(() => cache.prerender(['/a'], { app, concurrency: 1.5 }))).rejects.toThrow(
      TypeError,
    );
    expect(renders('/a')).toBe(0);
  });

  test('a store that is unavailable makes each path `failed`, with a reason naming the store', async () => {
    const { app, cache, renders } = setup({ store: new Keyv({ store: downAdapter() }) });
    const results = await cache.prerender(['/a', '/b'], { app });
    expect(results).toEqual([
      { path: '/a', outcome: 'failed', reason: expect.stringMatching(/store/i) },
      { path: '/b', outcome: 'failed', reason: expect.stringMatching(/store/i) },
    ]);
    expect(renders('/a')).toBeLessThanOrEqual(1);
  });
});

describe.each(expressVersions)(
  'cache.prerender() on two instances sharing Redis (%s)',
  (_name, createApp) => {
    const cleanups: (() => Promise<unknown>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    /** A Redis Keyv of the test's own, cleared and closed after it. */
    function sharedKeyv(): Keyv {
      const keyv = new Keyv({
        store: new KeyvRedis(REDIS_URL),
        namespace: uniqueNamespace('prerender'),
        useKeyPrefix: false,
      });
      cleanups.push(async () => {
        await keyv.clear();
        await keyv.disconnect();
      });
      return keyv;
    }

    /** Two apps, each with its own isr() on `store`; renders are counted across both. */
    function twoInstances(stores: [IsrOptions['store'], IsrOptions['store']]) {
      const clock = fakeClock();
      const renders = new Map<string, number>();
      const instance = (store: IsrOptions['store']) => {
        const recorder = errorRecorder();
        const cache = isr({
          store,
          now: clock.now,
          storeTimeout: 5000, // a paused read is not a store failure
          onError: recorder.onError,
          logger: recorder.logger,
        });
        cleanups.push(() => cache.close());
        const app = createApp();
        app.use(cache);
        routes(app, renders);
        return { app, cache, recorder };
      };
      return { a: instance(stores[0]), b: instance(stores[1]), renders };
    }

    test('prerendering the same paths on both at once renders each page once in total', async () => {
      const keyv = sharedKeyv();
      const { a, b, renders } = twoInstances([keyv, keyv]);
      const paths = ['/a', '/b', '/c'];

      const [fromA, fromB] = await Promise.all([
        a.cache.prerender(paths, { app: a.app, concurrency: 3 }),
        b.cache.prerender(paths, { app: b.app, concurrency: 3 }),
      ]);

      for (const path of paths) expect(renders.get(path)).toBe(1);
      paths.forEach((path, i) => {
        const outcomes = [fromA[i], fromB[i]].map((r) => r.outcome).sort();
        expect(fromA[i].path).toBe(path);
        expect(fromB[i].path).toBe(path);
        expect(outcomes.filter((o) => o === 'stored')).toHaveLength(1);
        expect(['fresh', 'skipped', 'newer-kept']).toContain(
          outcomes.find((o) => o !== 'stored') ?? 'stored',
        );
      });
      expect(a.recorder.errors).toEqual([]);
      expect(b.recorder.errors).toEqual([]);

      for (const site of [a, b]) {
        const hit = await request(site.app).get('/b');
        expect(hit.headers['x-isr-cache']).toBe('HIT');
        expect(hit.text).toBe('<h1>/b render 1</h1>');
      }
      for (const path of paths) expect(renders.get(path)).toBe(1);
    });

    test('an instance that looked a page up just before the other stored it does not render it again', async () => {
      const keyv = sharedKeyv();
      const late = lateReader(keyv);
      const { a, b, renders } = twoInstances([keyv, late.keyv as unknown as Keyv]);

      const paused = late.pauseNextGet('/a');
      const onB = b.cache.prerender(['/a'], { app: b.app });
      await paused.read; // B found nothing at /a

      expect(await a.cache.prerender(['/a'], { app: a.app })).toEqual([
        { path: '/a', outcome: 'stored' },
      ]);
      expect(renders.get('/a')).toBe(1);
      paused.release(); // A has stored and released its lease

      const [fromB] = await onB;
      expect(['fresh', 'skipped', 'newer-kept']).toContain(fromB.outcome);
      expect(renders.get('/a')).toBe(1);
      const hit = await request(b.app).get('/a');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>/a render 1</h1>');
    });
  },
);
