/**
 * A regeneration whose save the store refuses (Redis out of memory with `noeviction`) is a
 * failed regeneration: the stale page stays, the regeneration backs off instead of running again
 * on every request, and the failure shows in `lastError`, `stats()`, the `regenerate:error`
 * event and the Prometheus counter. Against a throwaway `redis-server` on a free loopback port.
 */
import { createClient } from '@keyv/redis';
import express from 'express';
import client from 'prom-client';
import { isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { listen } from '../helpers/http';
import { RedisServer, stopEverything } from '../helpers/instances';
import { fakeClock, within } from '../helpers/time';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopEverything();
});

test('a regeneration whose save Redis refuses (OOM) backs off and is reported as failed', async () => {
  const redis = await RedisServer.start();
  const admin = createClient({ url: redis.url });
  admin.on('error', () => {});
  await admin.connect();
  cleanups.push(async () => admin.destroy());

  const clock = fakeClock();
  const recorder = errorRecorder();
  const registry = new client.Registry();
  const cache = isr({
    store: redis.url,
    l1: false,
    now: clock.now,
    revalidate: 10,
    onError: recorder.onError,
    logger: recorder.logger,
    metrics: { registry },
  });
  const errors: { attempt: number; error: Error }[] = [];
  cache.on('regenerate:error', ({ attempt, error }) => errors.push({ attempt, error }));
  const app = express();
  let renders = 0;
  app.use(cache);
  app.get('/page', (_req, res) => {
    renders += 1;
    res.type('html').send(`<p>render ${renders}</p>`);
  });
  const site = await listen(app);
  cleanups.push(async () => {
    await site.close();
    await within(5000, cache.close());
  });

  expect((await site.get('/page')).headers['x-isr-cache']).toBe('MISS');
  await cache.idle();
  expect((await site.get('/page')).headers['x-isr-cache']).toBe('HIT');

  // Redis is full and evicts nothing: every write is refused with OOM, reads still work.
  await admin.configSet({ 'maxmemory-policy': 'noeviction', maxmemory: '1' });
  await expect(admin.set('probe', 'x')).rejects.toThrow(/OOM/);

  clock.advanceSeconds(11);
  // A burst of stale requests, each after the previous regeneration is over.
  for (let i = 0; i < 30; i += 1) {
    const stale = await site.get('/page');
    expect(`${stale.status} ${stale.headers['x-isr-cache']} ${stale.body}`).toBe(
      '200 STALE <p>render 1</p>',
    );
    await cache.idle();
  }
  // One regeneration, refused, then backing off: not one per request.
  expect(renders).toBe(2);
  expect(errors.map((e) => e.attempt)).toEqual([1]);
  expect(errors[0].error.message).toMatch(/store did not take/);
  expect(cache.stats().regenerations).toMatchObject({ started: 1, succeeded: 0, failed: 1 });
  const info = await cache.entry('/page');
  expect(info?.lastError).toMatchObject({ attempt: 1, message: expect.stringMatching(/store/) });
  expect(await registry.getSingleMetricAsString('express_isr_regenerations_total')).toMatch(
    /express_isr_regenerations_total\{result="error"\} 1/,
  );
  expect(recorder.errors.filter((e) => e.context.phase === 'regenerate')).toHaveLength(1);

  // After the backoff: one more attempt, refused again, backing off longer.
  clock.advance(1000);
  for (let i = 0; i < 10; i += 1) {
    await site.get('/page');
    await cache.idle();
  }
  expect(renders).toBe(3);
  expect(errors.map((e) => e.attempt)).toEqual([1, 2]);

  // Redis has room again: the next attempt after the backoff replaces the page.
  await admin.configSet('maxmemory', '0');
  clock.advance(2000);
  await site.get('/page');
  await cache.idle();
  const fresh = await site.get('/page');
  expect(`${fresh.headers['x-isr-cache']} ${fresh.body}`).toBe('HIT <p>render 4</p>');
  expect((await cache.entry('/page'))?.lastError).toBeUndefined();
}, 30_000);
