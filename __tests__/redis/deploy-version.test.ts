// Deploy versions on one shared Redis (README, "Deploying a new version"): each version keeps
// its own pages, so old and new instances of a rolling deploy never serve each other's HTML
// as fresh; the new version's first visitors get the previous version's page STALE at once
// while it is rendered again — once across the new version's instances — and nothing
// ping-pongs. Instances here are in one process (each with its own Keyv, so leases really go
// through Redis) to share one injected clock.
import KeyvRedis from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { deferred } from '../helpers/deferred';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { fakeClock } from '../helpers/time';

const cleanups = cleanupsAfterEach();

function deployment(namespace: string, clock: ReturnType<typeof fakeClock>) {
  const renders: Record<string, number> = {};
  /** Held renders of a version, released by the test. */
  const gates: Record<string, Promise<void> | undefined> = {};
  /** Versions whose page is personal (`Cache-Control: private`): never stored. */
  const personal = new Set<string>();
  function instance(version: string | undefined, options: Parameters<typeof isr>[0] = {}) {
    const keyv = new Keyv({
      store: new KeyvRedis(REDIS_URL),
      namespace,
      useKeyPrefix: false,
    });
    const cache = isr({
      store: keyv,
      version,
      l1: false,
      now: clock.now,
      revalidate: 60,
      ...options,
    });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/page', async (_req, res) => {
      const label = version ?? 'none';
      renders[label] = (renders[label] ?? 0) + 1;
      await gates[label];
      if (personal.has(label)) res.set('cache-control', 'private');
      res.send(`<p>${label} render ${renders[label]}</p>`);
    });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    return { app, cache, keyv };
  }
  return { instance, renders, gates, personal };
}

test('a rolling deploy: the new version serves the old page STALE once, renders its own once across instances, and neither version serves the other’s as fresh', async () => {
  const clock = fakeClock();
  const d = deployment(uniqueNamespace('deploy-version'), clock);
  const old = d.instance('build-1');
  expect((await request(old.app).get('/page')).text).toBe('<p>build-1 render 1</p>');
  await old.cache.idle();
  expect((await request(old.app).get('/page')).headers['x-isr-cache']).toBe('HIT');

  // Two instances of the new build come up; their renders are held until both were asked.
  const gate = deferred();
  d.gates['build-2'] = gate.promise;
  const b = d.instance('build-2');
  const c = d.instance('build-2');
  const [fromB, fromC] = await Promise.all([
    request(b.app).get('/page'),
    request(c.app).get('/page'),
  ]);
  for (const answer of [fromB, fromC]) {
    // Not waiting for a render: the previous build's page, said to be stale.
    expect(answer.headers['x-isr-cache']).toBe('STALE');
    expect(answer.text).toBe('<p>build-1 render 1</p>');
  }
  gate.resolve();
  await Promise.all([b.cache.idle(), c.cache.idle()]);
  expect(d.renders['build-2']).toBe(1); // once across the new build's instances

  for (const instance of [b, c]) {
    const hit = await request(instance.app).get('/page');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<p>build-2 render 1</p>');
  }
  // The old instance, still running, keeps its own build's page: no ping-pong.
  const oldHit = await request(old.app).get('/page');
  expect(oldHit.headers['x-isr-cache']).toBe('HIT');
  expect(oldHit.text).toBe('<p>build-1 render 1</p>');

  // Each regenerates its own when the window passes, and the other's page is untouched.
  clock.advanceSeconds(61);
  expect((await request(old.app).get('/page')).headers['x-isr-cache']).toBe('STALE');
  await old.cache.idle();
  expect((await request(old.app).get('/page')).text).toBe('<p>build-1 render 2</p>');
  expect((await request(b.app).get('/page')).headers['x-isr-cache']).toBe('STALE');
  await b.cache.idle();
  const after = await request(c.app).get('/page');
  expect(after.headers['x-isr-cache']).toBe('HIT');
  expect(after.text).toBe('<p>build-2 render 2</p>');
  expect(d.renders['build-1']).toBe(2);
  expect(d.renders['build-2']).toBe(2);
});

test('a page the new version does not cache any more: the old copy is served once at most, then never', async () => {
  const clock = fakeClock();
  const d = deployment(uniqueNamespace('deploy-version-private'), clock);
  const old = d.instance('build-1');
  await request(old.app).get('/page');
  await old.cache.idle();
  d.personal.add('build-2'); // the new build made the page personal
  const next = d.instance('build-2');
  const first = await request(next.app).get('/page');
  expect(first.headers['x-isr-cache']).toBe('STALE'); // before the new build was asked
  await next.cache.idle();
  for (let i = 0; i < 3; i += 1) {
    const answer = await request(next.app).get('/page');
    expect(answer.text).not.toContain('build-1');
    expect(answer.headers['x-isr-cache']).not.toBe('STALE');
  }
});

test('an invalidation reaches every version (tag clocks are shared)', async () => {
  const clock = fakeClock();
  const d = deployment(uniqueNamespace('deploy-version-clocks'), clock);
  const old = d.instance('build-1');
  const next = d.instance('build-2');
  await request(old.app).get('/page');
  await request(next.app).get('/page'); // STALE from build-1, then its own render
  await Promise.all([old.cache.idle(), next.cache.idle()]);
  expect((await request(next.app).get('/page')).headers['x-isr-cache']).toBe('HIT');

  clock.advance(1);
  await next.cache.revalidatePath('/page', { mode: 'expire' });
  for (const instance of [old, next]) {
    const answer = await request(instance.app).get('/page');
    expect(answer.headers['x-isr-cache']).toBe('MISS');
  }
});

test('an expired page of the previous version is not served, even as STALE', async () => {
  const clock = fakeClock();
  const d = deployment(uniqueNamespace('deploy-version-expired'), clock);
  const old = d.instance('build-1');
  await request(old.app).get('/page');
  await old.cache.idle();
  clock.advance(1);
  await old.cache.revalidatePath('/page', { mode: 'expire' });
  const next = d.instance('build-2');
  const answer = await request(next.app).get('/page');
  expect(answer.headers['x-isr-cache']).toBe('MISS');
  expect(answer.text).toBe('<p>build-2 render 1</p>');
});

test('cache.entries() and cache.entry() show this version’s pages', async () => {
  const clock = fakeClock();
  const d = deployment(uniqueNamespace('deploy-version-inspect'), clock);
  const old = d.instance('build-1');
  const next = d.instance('build-2');
  await request(old.app).get('/page');
  await old.cache.idle();
  expect((await next.cache.entries()).entries).toEqual([]);
  expect((await next.cache.entry('/page'))?.reason).toBe('rendered by version build-1');
  await request(next.app).get('/page');
  await next.cache.idle();
  const listed = (await next.cache.entries()).entries;
  expect(listed.map((e) => [e.url, e.state])).toEqual([['/page', 'fresh']]);
});

test('with the memory store, version changes nothing (a restart starts empty anyway)', async () => {
  const clock = fakeClock();
  const cache = isr({ version: 'build-1', now: clock.now });
  cleanups.push(() => cache.close());
  const app = express();
  app.use(cache);
  app.get('/page', (_req, res) => {
    res.send('<p>page</p>');
  });
  await request(app).get('/page');
  await cache.idle();
  expect((await request(app).get('/page')).headers['x-isr-cache']).toBe('HIT');
  expect((await cache.entry('/page'))?.key).toBe('/page');
});
