/**
 * Metrics: `cache.stats()` counts what happened — requests by state, bypass
 * reasons, regenerations started/succeeded/failed with a duration histogram, revalidations by
 * mode, store errors — and with `metrics: { registry }` the same numbers appear in a
 * prom-client registry's Prometheus text. A registry that is not one is refused by name.
 */
import express, { type Request, type Response } from 'express';
import client from 'prom-client';
import request from 'supertest';
import { type IsrOptions, isRegeneration, isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { recordedCache } from '../helpers/site';
import { sleep, waitFor } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

const SECRET = 'a-webhook-secret-long-enough-1234';

/** `/page` (new version on each render), `/flaky` (its regenerations throw), `/cookie`. */
function setup(options: IsrOptions = {}) {
  const { clock, recorder, cache } = recordedCache({ revalidate: 10, ...options });
  cleanups.push(() => cache.close());
  const app = express();
  let renders = 0;
  app.use(cache);
  app.get('/page', (_req: Request, res: Response) => {
    renders += 1;
    res.send(`<h1>render ${renders}</h1>`);
  });
  let flakyRenders = 0;
  app.get('/flaky', (req: Request, res: Response) => {
    // The first render (the MISS's) works; the regenerations after it fail.
    flakyRenders += 1;
    if (isRegeneration(req) && flakyRenders > 1) throw new Error('cms down');
    res.send('<h1>flaky</h1>');
  });
  app.get('/cookie', (_req: Request, res: Response) => {
    res.cookie('session', 'abc');
    res.send('<h1>personal</h1>');
  });
  app.post('/page', (_req: Request, res: Response) => {
    res.send('saved');
  });
  app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
  return { app, cache, clock, recorder };
}

/**
 * 2 MISS, 3 HIT, 2 STALE (one regeneration succeeds, one fails), 4 BYPASS (POST, Authorization,
 * 2× set-cookie), then 4 revalidations from the methods: 2 stale, 1 expire, 1 regenerate.
 */
async function playScenario({ app, cache, clock }: ReturnType<typeof setup>) {
  const states: string[] = [];
  const get = async (path: string, headers: Record<string, string> = {}) => {
    const res = await request(app).get(path).set(headers);
    states.push(`${path} ${res.headers['x-isr-cache']}`);
  };
  await get('/page');
  await get('/flaky');
  await cache.idle();
  await get('/page');
  await get('/page');
  clock.advanceSeconds(15);
  await get('/page');
  await get('/flaky');
  await cache.idle();
  await get('/page');
  const post = await request(app).post('/nothing-here');
  states.push(`POST ${post.headers['x-isr-cache']}`);
  await get('/page', { Authorization: 'Bearer user' });
  await get('/cookie');
  await get('/cookie');
  await cache.idle();
  expect(states).toEqual([
    '/page MISS',
    '/flaky MISS',
    '/page HIT',
    '/page HIT',
    '/page STALE',
    '/flaky STALE',
    '/page HIT',
    'POST BYPASS',
    '/page BYPASS',
    '/cookie BYPASS',
    '/cookie BYPASS',
  ]);
  await cache.revalidatePath('/page');
  await cache.revalidatePath('/elsewhere');
  await cache.revalidateTag('no-page-has-it', { mode: 'expire' });
  await cache.revalidate({ tags: ['nor-this-one'], mode: 'regenerate' });
  await cache.idle();
}

describe('cache.stats()', () => {
  test('starts at zero', async () => {
    const { cache } = setup();
    const stats = cache.stats();
    expect(stats.requests).toEqual({ hit: 0, stale: 0, miss: 0, bypass: 0 });
    expect(stats.bypassReasons).toEqual({});
    expect(stats.regenerations).toMatchObject({ started: 0, succeeded: 0, failed: 0 });
    expect(stats.regenerations.duration.count).toBe(0);
    expect(stats.revalidations).toEqual({ stale: 0, expire: 0, regenerate: 0 });
    expect(stats.storeErrors).toBe(0);
  });

  test('counts requests by state, bypass reasons, regenerations and revalidations', async () => {
    const site = setup();
    await playScenario(site);
    const stats = site.cache.stats();
    expect(stats.requests).toEqual({ hit: 3, stale: 2, miss: 2, bypass: 4 });
    expect(stats.bypassReasons).toEqual({
      'method POST': 1,
      authorization: 1,
      'set-cookie': 2,
    });
    expect(stats.regenerations).toMatchObject({ started: 2, succeeded: 1, failed: 1 });
    expect(stats.revalidations).toEqual({ stale: 2, expire: 1, regenerate: 1 });
    expect(stats.storeErrors).toBe(0);
    expect(site.recorder.errors.map((e) => e.context.phase)).toEqual(['regenerate']);
  });

  test('the duration histogram counts each successful regeneration, buckets cumulative', async () => {
    const site = setup();
    const before = performance.now();
    await playScenario(site);
    const elapsedSeconds = (performance.now() - before) / 1000;
    const { duration } = site.cache.stats().regenerations;
    expect(duration.count).toBe(1);
    // In seconds, real time: more than nothing, and no more than the whole scenario took.
    expect(duration.sum).toBeGreaterThan(0);
    expect(duration.sum).toBeLessThanOrEqual(elapsedSeconds);
    expect(duration.buckets.length).toBeGreaterThan(0);
    const counts = duration.buckets.map((b) => b.count);
    for (let i = 1; i < counts.length; i += 1)
      expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]);
    // A regeneration of a one-line page ends well within the largest bucket.
    expect(counts[counts.length - 1]).toBe(1);
    const bounds = duration.buckets.map((b) => b.le);
    expect([...bounds].sort((a, b) => a - b)).toEqual(bounds);
  });

  test('a snapshot is a copy: later requests do not change it', async () => {
    const { app, cache } = setup();
    await request(app).get('/page');
    const before = cache.stats();
    await cache.idle();
    await request(app).get('/page');
    expect(before.requests).toEqual({ hit: 0, stale: 0, miss: 1, bypass: 0 });
    expect(cache.stats().requests).toEqual({ hit: 1, stale: 0, miss: 1, bypass: 0 });
  });

  test('counts store errors once per outage', async () => {
    const map = new Map<string, unknown>();
    const state = { down: true };
    const act = <T>(work: () => T): Promise<T> =>
      state.down ? Promise.reject(new Error('store is down')) : Promise.resolve(work());
    const store = {
      get: (key: string) => act(() => map.get(key)),
      set: (key: string, value: unknown) => act(() => map.set(key, value) && true),
      delete: (key: string) => act(() => map.delete(key)),
    };
    const registry = new client.Registry();
    const { app, cache, clock } = setup({ store, storeTimeout: 50, metrics: { registry } });
    for (let i = 0; i < 3; i += 1) {
      clock.advanceSeconds(2);
      expect((await request(app).get('/page')).status).toBe(200);
      await cache.idle();
    }
    expect(cache.stats().storeErrors).toBe(1);

    state.down = false;
    clock.advanceSeconds(2);
    await request(app).get('/page');
    await cache.idle();
    state.down = true;
    clock.advanceSeconds(2);
    await request(app).get('/page');
    await cache.idle();
    expect(cache.stats().storeErrors).toBe(2);
    expect(await registry.metrics()).toMatch(/^express_isr_store_errors_total 2$/m);
  });
});

describe('Prometheus through prom-client (metrics: { registry })', () => {
  test('exports the same numbers as stats() in Prometheus text', async () => {
    const registry = new client.Registry();
    const site = setup({ metrics: { registry } });
    await playScenario(site);
    const text = await registry.metrics();
    expect(text).toContain('express_isr_requests_total{state="hit"} 3');
    expect(text).toContain('express_isr_requests_total{state="stale"} 2');
    expect(text).toContain('express_isr_requests_total{state="miss"} 2');
    expect(text).toContain('express_isr_requests_total{state="bypass"} 4');
    expect(text).toContain('express_isr_regenerations_total{result="success"} 1');
    expect(text).toContain('express_isr_regenerations_total{result="error"} 1');
    expect(text).toMatch(/^express_isr_regeneration_duration_seconds_count 1$/m);
    expect(text).toMatch(/^express_isr_regeneration_duration_seconds_bucket\{le="\+Inf"\} 1$/m);
    expect(text).toContain('express_isr_revalidations_total{mode="stale",source="api"} 2');
    expect(text).toContain('express_isr_revalidations_total{mode="expire",source="api"} 1');
    expect(text).toContain('express_isr_revalidations_total{mode="regenerate",source="api"} 1');
    expect(text).toMatch(/^express_isr_store_errors_total 0$/m);
  });

  test('revalidations are labelled by source: webhook and unsafe-method', async () => {
    const registry = new client.Registry();
    const { app, cache } = setup({ metrics: { registry } });
    const hook = await request(app)
      .post('/api/revalidate')
      .set('Authorization', `Bearer ${SECRET}`)
      .send({ paths: ['/a', '/b'], tags: ['posts'], mode: 'expire' });
    expect(hook.status).toBe(200);
    await request(app).get('/page'); // a POST invalidates a page that is stored
    await cache.idle();
    expect((await request(app).post('/page')).status).toBe(200);
    // The unsafe-method invalidation is recorded once the POST's response has finished.
    await waitFor(
      "the POST's invalidation recorded",
      () => cache.stats().revalidations.stale >= 1,
      2000,
    );
    await sleep(20);
    const text = await registry.metrics();
    expect(text).toContain('express_isr_revalidations_total{mode="expire",source="webhook"} 1');
    expect(text).toContain(
      'express_isr_revalidations_total{mode="stale",source="unsafe-method"} 1',
    );
    // One webhook call with several targets is one revalidation; its own POST is not another.
    expect(cache.stats().revalidations).toEqual({ stale: 1, expire: 1, regenerate: 0 });
  });

  test('prefix renames the metrics', async () => {
    const registry = new client.Registry();
    const { app, cache } = setup({ metrics: { registry, prefix: 'shop_cache_' } });
    await request(app).get('/page');
    await cache.idle();
    await request(app).get('/page');
    const text = await registry.metrics();
    expect(text).toContain('shop_cache_requests_total{state="hit"} 1');
    expect(text).toContain('shop_cache_requests_total{state="miss"} 1');
    expect(text).not.toContain('express_isr_');
  });

  test('metrics: { registry: {} } throws a TypeError naming metrics', () => {
    expect(() => isr({ metrics: { registry: {} as never } })).toThrow(TypeError);
    expect(() => isr({ metrics: { registry: {} as never } })).toThrow(/metrics/);
    expect(() => isr({ metrics: 'yes' as never })).toThrow(/metrics/);
  });
});
