/**
 * Events of the middleware: `hit`, `stale`, `miss` (the render's leader and
 * the requests that waited for it), `bypass` (request- and response-level reasons),
 * `regenerate:start` / `:success` / `:error`, `revalidate` from the methods, the webhook and
 * successful unsafe requests, and `store:error` once per outage — each with its documented
 * payload. `off()` stops delivery, and a cache nobody listens to behaves the same.
 */
import type { Request, Response } from 'express';
import request from 'supertest';
import { type IsrMiddleware, type IsrOptions, isRegeneration, revalidateRouter } from '../../lib';
import type { IsrEventName, IsrEvents } from '../../lib/observability/observer';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { arrivals, listen } from '../helpers/http';
import { recordedCache } from '../helpers/site';
import { sleep, waitFor } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

const SECRET = 'a-webhook-secret-long-enough-1234';

/** Everything `cache` emits as `name`, in order. */
function record<K extends IsrEventName>(cache: IsrMiddleware, name: K): IsrEvents[K][] {
  const events: IsrEvents[K][] = [];
  cache.on(name, (event) => {
    events.push(event);
  });
  return events;
}

/** A Keyv-like store of the user's own whose calls reject while `down` is set. */
function switchableStore() {
  const map = new Map<string, unknown>();
  const state = { down: false };
  const act = <T>(work: () => T): Promise<T> =>
    state.down ? Promise.reject(new Error('store is down')) : Promise.resolve(work());
  return {
    state,
    get: (key: string) => act(() => map.get(key)),
    set: (key: string, value: unknown) =>
      act(() => {
        map.set(key, value);
        return true;
      }),
    delete: (key: string) => act(() => map.delete(key)),
  };
}

describe.each(expressVersions)('events (%s)', (_name, createApp: ExpressFactory) => {
  /**
   * `/page` (its regenerations fail while `failRegenerations` is set), `/slow` (waits until
   * `slowArrivals` requests reached the app), `/cookie` (sets a cookie), POST `/page` (works),
   * POST `/broken` (500), and the webhook at `/api/revalidate`.
   */
  function setup(options: IsrOptions = {}, slowArrivals = 1) {
    const { clock, recorder, cache } = recordedCache({ revalidate: 10, ...options });
    cleanups.push(() => cache.close());
    const app = createApp();
    const gate = arrivals(slowArrivals);
    const state = { version: 1, renders: 0, slowRenders: 0, failRegenerations: false };
    app.use(gate.middleware);
    app.use(cache);
    app.get('/page', (req: Request, res: Response) => {
      state.renders += 1;
      if (isRegeneration(req) && state.failRegenerations) throw new Error('template exploded');
      res.send(`<h1>version ${state.version}</h1>`);
    });
    app.get('/slow', async (_req: Request, res: Response) => {
      state.slowRenders += 1;
      await gate.allArrived;
      await sleep(30);
      res.send('<h1>slow page</h1>');
    });
    app.get('/cookie', (_req: Request, res: Response) => {
      res.cookie('session', 'abc');
      res.send('<h1>personal</h1>');
    });
    app.post('/page', (_req: Request, res: Response) => {
      res.send('saved');
    });
    app.post('/broken', (_req: Request, res: Response) => {
      res.status(500).send('failed');
    });
    app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
    return { app, cache, clock, recorder, state };
  }

  test('hit: { key, age } for a fresh page replayed from the cache', async () => {
    const { app, cache, clock, state } = setup();
    const hits = record(cache, 'hit');
    expect((await request(app).get('/page?b=2&a=1')).headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    expect(hits).toEqual([]);

    clock.advanceSeconds(4);
    const res = await request(app).get('/page?a=1&b=2');
    expect(res.headers['x-isr-cache']).toBe('HIT');
    expect(hits).toEqual([{ key: '/page?a=1&b=2', age: 4 }]);
    expect(state.renders).toBe(1);
  });

  test('stale: { key, age, reason } for a page past its window, and after revalidatePath', async () => {
    const { app, cache, clock } = setup();
    const stale = record(cache, 'stale');
    await request(app).get('/page');
    await cache.idle();

    clock.advanceSeconds(15);
    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    expect(stale).toEqual([{ key: '/page', age: 15, reason: expect.stringContaining('10s') }]);

    clock.advanceSeconds(1);
    await cache.revalidatePath('/page');
    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    expect(stale).toHaveLength(2);
    expect(stale[1]).toEqual({ key: '/page', age: 1, reason: expect.any(String) });
    expect(stale[1].reason).not.toBe(stale[0].reason);
    expect(stale[1].reason).not.toBe('');
  });

  test('miss: { key } for the request that renders and for each request that waited for it', async () => {
    const { app, cache, state } = setup({}, 3);
    const misses = record(cache, 'miss');
    const server = await listen(app);
    try {
      const answers = await Promise.all(
        [1, 2, 3].map(async () => {
          const res = await fetch(server.url('/slow'));
          return { state: res.headers.get('x-isr-cache'), body: await res.text() };
        }),
      );
      expect(answers.map((a) => a.state)).toEqual(['MISS', 'MISS', 'MISS']);
      expect(answers.every((a) => a.body === '<h1>slow page</h1>')).toBe(true);
      expect(state.slowRenders).toBe(1);
      expect(misses).toEqual([{ key: '/slow' }, { key: '/slow' }, { key: '/slow' }]);
    } finally {
      await server.close();
      await cache.close();
    }
  });

  test('bypass: { url, reason } for requests (POST, Authorization) and responses (set-cookie)', async () => {
    const { app, cache } = setup();
    const bypasses = record(cache, 'bypass');
    expect((await request(app).post('/page')).headers['x-isr-cache']).toBe('BYPASS');
    expect(
      (await request(app).get('/page').set('Authorization', 'Bearer user-token')).headers[
        'x-isr-cache'
      ],
    ).toBe('BYPASS');
    expect((await request(app).get('/cookie')).headers['x-isr-cache']).toBe('BYPASS');
    await cache.idle();
    expect(bypasses).toEqual([
      { url: '/page', reason: 'method POST' },
      { url: '/page', reason: 'authorization' },
      { url: '/cookie', reason: 'set-cookie' },
    ]);
  });

  test('regenerate:start and regenerate:success { key, url, duration, bytes }', async () => {
    const { app, cache, clock, state } = setup();
    const starts = record(cache, 'regenerate:start');
    const successes = record(cache, 'regenerate:success');
    await request(app).get('/page');
    await cache.idle();
    expect(starts).toEqual([]);

    state.version = 22;
    clock.advanceSeconds(15);
    // The regeneration runs within these two readings: its duration (real time, measured by
    // the library with performance.now()) lies between 0 and what the test saw pass.
    const before = performance.now();
    expect((await request(app).get('/page')).text).toBe('<h1>version 1</h1>');
    await cache.idle();
    const elapsed = performance.now() - before;
    expect((await request(app).get('/page')).text).toBe('<h1>version 22</h1>');

    expect(starts).toEqual([{ key: '/page', url: '/page' }]);
    expect(successes).toEqual([
      {
        key: '/page',
        url: '/page',
        duration: expect.any(Number),
        bytes: Buffer.byteLength('<h1>version 22</h1>'),
      },
    ]);
    expect(successes[0].duration).toBeGreaterThan(0);
    expect(successes[0].duration).toBeLessThanOrEqual(elapsed);
  });

  test('regenerate:error { error, attempt, nextRetryAt }, attempt growing on the next retry', async () => {
    const { app, cache, clock, state, recorder } = setup();
    const failures = record(cache, 'regenerate:error');
    const successes = record(cache, 'regenerate:success');
    await request(app).get('/page');
    await cache.idle();

    state.failRegenerations = true;
    clock.advanceSeconds(15);
    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    expect(failures).toHaveLength(1);
    const [first] = failures;
    expect(first).toEqual({
      key: '/page',
      url: '/page',
      error: expect.any(Error),
      attempt: 1,
      nextRetryAt: expect.any(Number),
    });
    expect(first.error.message).toContain('template exploded');
    // "first retry after about a second"
    expect(first.nextRetryAt).toBeGreaterThan(clock.now());
    expect(first.nextRetryAt).toBeLessThanOrEqual(clock.now() + 2000);

    clock.advance(first.nextRetryAt - clock.now() + 1);
    expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    expect(failures).toHaveLength(2);
    expect(failures[1].attempt).toBe(2);
    expect(failures[1].nextRetryAt).toBeGreaterThan(clock.now());
    expect(successes).toEqual([]);
    expect(recorder.errors.map((e) => e.context.phase)).toEqual(['regenerate', 'regenerate']);
  });

  test("revalidate from the methods: { paths, tags, mode, source: 'api' }", async () => {
    const { cache } = setup();
    const revalidations = record(cache, 'revalidate');
    await cache.revalidatePath('/page');
    await cache.revalidatePath('/blog', { type: 'layout', mode: 'expire' });
    await cache.revalidateTag('posts', { mode: 'regenerate' });
    await cache.revalidate({ paths: ['/a', '/b'], tags: ['x', 'y'], mode: 'expire' });
    expect(revalidations).toEqual([
      { paths: ['/page'], tags: [], mode: 'stale', source: 'api' },
      { paths: ['/blog'], tags: [], mode: 'expire', source: 'api' },
      { paths: [], tags: ['posts'], mode: 'regenerate', source: 'api' },
      { paths: ['/a', '/b'], tags: ['x', 'y'], mode: 'expire', source: 'api' },
    ]);
  });

  test("revalidate from the webhook: one event with source 'webhook', none for its own POST", async () => {
    const { app, cache } = setup();
    const revalidations = record(cache, 'revalidate');
    const hook = await request(app)
      .post('/api/revalidate')
      .set('Authorization', `Bearer ${SECRET}`)
      .send({ paths: ['/page', '/other'], tags: ['a', 'b'], mode: 'expire' });
    expect(hook.status).toBe(200);
    expect(revalidations).toEqual([
      { paths: ['/page', '/other'], tags: ['a', 'b'], mode: 'expire', source: 'webhook' },
    ]);

    // A later successful POST to a stored page is seen: had the webhook's own POST counted, it
    // would be here too. (A POST to a path with no page stored invalidates nothing.)
    await request(app).get('/page');
    await cache.idle();
    expect((await request(app).post('/page')).status).toBe(200);
    await waitFor('two revalidations', () => revalidations.length >= 2, 2000);
    await sleep(20);
    expect(revalidations).toEqual([
      { paths: ['/page', '/other'], tags: ['a', 'b'], mode: 'expire', source: 'webhook' },
      { paths: ['/page'], tags: [], mode: 'stale', source: 'unsafe-method' },
    ]);
  });

  test("revalidate from a successful POST to a page: source 'unsafe-method'; a failed one: none", async () => {
    const { app, cache } = setup();
    const revalidations = record(cache, 'revalidate');
    await request(app).get('/page');
    await cache.idle();
    expect((await request(app).post('/broken')).status).toBe(500);
    expect((await request(app).post('/page?draft=1')).status).toBe(200);
    await waitFor('a revalidation', () => revalidations.length >= 1, 2000);
    await sleep(20);
    expect(revalidations).toEqual([
      { paths: ['/page'], tags: [], mode: 'stale', source: 'unsafe-method' },
    ]);
  });

  test('store:error { error }: once per outage, again for the next outage', async () => {
    const store = switchableStore();
    const { app, cache, clock } = setup({ store, storeTimeout: 50 });
    const storeErrors = record(cache, 'store:error');
    await request(app).get('/page');
    await cache.idle();
    expect(storeErrors).toEqual([]);

    store.state.down = true;
    for (let i = 0; i < 3; i += 1) {
      clock.advanceSeconds(2); // past the circuit breaker's cool-down: the store is tried again
      const res = await request(app).get('/page');
      expect(res.status).toBe(200);
      await cache.idle();
    }
    expect(storeErrors).toHaveLength(1);
    expect(storeErrors[0].error).toBeInstanceOf(Error);
    expect(storeErrors[0].error.message).toContain('store is down');

    store.state.down = false;
    clock.advanceSeconds(2);
    expect((await request(app).get('/page')).status).toBe(200);
    await cache.idle();
    expect(storeErrors).toHaveLength(1);

    store.state.down = true;
    clock.advanceSeconds(2);
    expect((await request(app).get('/page')).status).toBe(200);
    await cache.idle();
    expect(storeErrors).toHaveLength(2);
  });

  test('off() stops delivery to that listener; other listeners still get the event', async () => {
    const { app, cache } = setup();
    const removed: unknown[] = [];
    const kept: unknown[] = [];
    const removedListener = (event: IsrEvents['hit']) => {
      removed.push(event);
    };
    cache.on('hit', removedListener);
    cache.on('hit', (event) => {
      kept.push(event);
    });
    await request(app).get('/page');
    await cache.idle();
    await request(app).get('/page');
    expect(removed).toHaveLength(1);

    cache.off('hit', removedListener);
    await request(app).get('/page');
    await request(app).get('/page');
    expect(removed).toHaveLength(1);
    expect(kept).toHaveLength(3);
  });

  test('with no listener the cache behaves the same: MISS, HIT, STALE, new page, BYPASS', async () => {
    const { app, cache, clock, state } = setup();
    const miss = await request(app).get('/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    const hit = await request(app).get('/page');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>version 1</h1>');

    state.version = 2;
    clock.advanceSeconds(15);
    const stale = await request(app).get('/page');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>version 1</h1>');
    await cache.idle();
    const fresh = await request(app).get('/page');
    expect(fresh.headers['x-isr-cache']).toBe('HIT');
    expect(fresh.text).toBe('<h1>version 2</h1>');
    expect((await request(app).get('/cookie')).headers['x-isr-cache']).toBe('BYPASS');
    expect(state.renders).toBe(2);
  });
});
