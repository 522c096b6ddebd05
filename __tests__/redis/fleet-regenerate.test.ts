/**
 * README, "Revalidate from your CMS": `mode: 'regenerate'` re-renders every matching page
 * across the fleet, whichever instance the webhook reaches. Two real app processes
 * (`fixtures/instance.ts`) share the local Redis under a namespace of each test's own;
 * behind a load balancer, instance B alone has served the pages, and the webhook hits A. Then
 * two caches in this process, for the page whose lease another instance holds.
 */
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { Instance, stopEverything } from '../helpers/instances';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { fakeClock, sleep } from '../helpers/time';

const cleanups = cleanupsAfterEach();
afterEach(() => stopEverything());

const SECRET = 'a-secret-long-enough-for-the-router';

async function fleet(label: string, regenerateTimeout: number) {
  const ns = uniqueNamespace(label);
  const admin = createClient({ url: REDIS_URL });
  admin.on('error', () => {});
  await admin.connect();
  cleanups.push(async () => {
    const keys: string[] = [];
    for await (const batch of admin.scanIterator({ MATCH: `${ns}*`, COUNT: 1000 })) {
      keys.push(...batch);
    }
    if (keys.length > 0) await admin.del(keys);
    admin.destroy();
  });
  const options = {
    redisUrl: REDIS_URL,
    namespace: ns,
    l1: true,
    secret: SECRET,
    // Not the default 500 ms store timeout: two CPUs shared with other test runs must not make
    // an outage.
    env: { ISR_REGENERATE_TIMEOUT: String(regenerateTimeout), ISR_STORE_TIMEOUT: '3000' },
  };
  const [a, b] = await Promise.all([Instance.start('A', options), Instance.start('B', options)]);
  const renders = async (path: string) => Number((await admin.get(`${ns}:renders:${path}`)) ?? 0);
  /** Until B's stores of `paths` reached the shared index (a page is stored after its answer). */
  const indexed = async (paths: string[]) => {
    const key = `${ns}::isr-page-index:tag:posts`;
    for (let i = 0; i < 250; i += 1) {
      const members = await admin.zRange(key, 0, -1);
      if (paths.every((path) => members.includes(JSON.stringify([path])))) return;
      await sleep(20);
    }
    throw new Error(`${paths.join(' ')} never indexed`);
  };
  return { ns, admin, a, b, renders, indexed };
}

test('a page only B served is re-rendered once across the fleet by a webhook to A, and both answer HIT with the new page', async () => {
  const { ns, admin, a, b, renders, indexed } = await fleet('fleet-regenerate', 5000);
  for (const path of ['/post/1', '/post/2']) expect((await b.get(path)).state).toBe('MISS');
  await indexed(['/post/1', '/post/2']);
  await admin.set(`${ns}:version`, '1');

  const answer = await a.revalidate({ tags: ['posts'], mode: 'regenerate' }, SECRET);
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toMatchObject({
    revalidated: true,
    tags: ['posts'],
    mode: 'regenerate',
    regenerated: 2,
    failed: 0,
    pending: 0,
  });
  // One render on B's first visit, one by the regeneration: never one per instance.
  expect([await renders('/post/1'), await renders('/post/2')]).toEqual([2, 2]);
  for (const instance of [b, a]) {
    for (const path of ['/post/1', '/post/2']) {
      const page = await instance.get(path);
      expect({ name: instance.name, path, state: page.state, body: page.body }).toEqual({
        name: instance.name,
        path,
        state: 'HIT',
        body: `<p>path=${path} version=1</p>`,
      });
    }
  }
  expect([await renders('/post/1'), await renders('/post/2')]).toEqual([2, 2]);

  // `entries()` on A (the webhook's `GET /entries`) lists the pages B stored.
  const listing = await a.get(`/api/revalidate/entries?secret=${SECRET}&prefix=/post/`);
  expect(listing.status).toBe(200);
  const { entries, truncated } = JSON.parse(listing.body);
  expect(entries.map((entry: { url: string }) => entry.url).sort()).toEqual(['/post/1', '/post/2']);
  expect(entries.every((entry: { state: string }) => entry.state === 'fresh')).toBe(true);
  expect(truncated).toBe(false);
  // With the index gone (evicted, say), the listing walks the store instead: the same pages.
  for await (const batch of admin.scanIterator({ MATCH: `${ns}::isr-page-index:*` })) {
    if (batch.length > 0) await admin.del(batch);
  }
  const walked = JSON.parse(
    (await a.get(`/api/revalidate/entries?secret=${SECRET}&prefix=/post/`)).body,
  );
  expect(walked.entries.map((entry: { url: string }) => entry.url).sort()).toEqual([
    '/post/1',
    '/post/2',
  ]);
  expect([...a.reportedErrors, ...b.reportedErrors]).toEqual([]);
}, 60_000);

test('a page whose re-render fails counts as failed, one slower than regenerateTimeout as pending; the answer comes back meanwhile', async () => {
  const timeout = 1500;
  const { ns, admin, a, b, renders, indexed } = await fleet('fleet-regenerate-outcomes', timeout);
  const paths = ['/post/ok', '/post/broken', '/post/slow'];
  for (const path of paths) expect((await b.get(path)).state).toBe('MISS');
  await indexed(paths);
  await admin.set(`${ns}:behaviour:/post/broken`, 'fail');
  await admin.set(`${ns}:behaviour:/post/slow`, 'slow');
  await admin.set(`${ns}:version`, '1');

  const answer = await a.revalidate({ tags: ['posts'], mode: 'regenerate' }, SECRET);
  expect(answer.status).toBe(200);
  expect(JSON.parse(answer.body)).toMatchObject({ regenerated: 1, failed: 1, pending: 1 });
  expect(await renders('/post/ok')).toBe(2);
  expect((await b.get('/post/ok')).body).toBe('<p>path=/post/ok version=1</p>');
  // The failed page stays as it was, served STALE; the failure went to A's onError.
  const broken = await b.get('/post/broken');
  expect([broken.state, broken.body]).toEqual(['STALE', '<p>path=/post/broken version=0</p>']);
  expect(a.reportedErrors.some((line) => line.startsWith('ISR-ERROR regenerate '))).toBe(true);
}, 60_000);

test('a stale or expire webhook says nothing of regenerations', async () => {
  const { a, b, indexed } = await fleet('fleet-regenerate-modes', 5000);
  expect((await b.get('/post/1')).state).toBe('MISS');
  await indexed(['/post/1']);
  for (const mode of ['stale', 'expire']) {
    const answer = JSON.parse((await a.revalidate({ tags: ['posts'], mode }, SECRET)).body);
    expect(answer).toMatchObject({ revalidated: true, mode });
    expect(Object.keys(answer).sort()).toEqual(['mode', 'now', 'paths', 'revalidated', 'tags']);
  }
}, 60_000);

describe('two caches in this process on the shared Redis', () => {
  test("a page whose lease B holds is waited for; B's render started before the webhook, so A renders it again", async () => {
    const ns = uniqueNamespace('fleet-regenerate-lease');
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    const clock = fakeClock();
    let content = 'v1';
    const renders = { A: 0, B: 0 };
    let gate: ReturnType<typeof deferred<void>> | undefined;
    /** A's reads of the page after the webhook: its second one comes once it met B's lease. */
    let readsOfPost = 0;
    const readSecondTime = deferred();
    const watched = {
      store: keyv.store,
      namespace: keyv.namespace,
      get: async (key: string) => {
        if (key === '/post' && gate !== undefined) {
          readsOfPost += 1;
          if (readsOfPost === 2) readSecondTime.resolve();
        }
        return keyv.get(key);
      },
      set: (key: string, value: unknown, ttl?: number) => keyv.set(key, value, ttl),
      delete: (key: string) => keyv.delete(key),
      getMany: (keys: string[]) => keyv.getMany(keys),
      on: (event: 'error', listener: (error: unknown) => void) => keyv.on(event, listener),
    };
    const instance = (name: 'A' | 'B', store: unknown) => {
      const recorder = errorRecorder();
      const app = express();
      const cache = isr({
        store: store as Keyv,
        l1: false,
        now: clock.now,
        app,
        revalidate: 60,
        storeTimeout: 3000,
        onError: recorder.onError,
        logger: recorder.logger,
      });
      app.use(cache);
      app.get('/post', async (_req, res) => {
        renders[name] += 1;
        const shown = content;
        if (name === 'B' && gate !== undefined) await gate.promise;
        res.isr({ tags: ['posts'] });
        res.type('html').send(`<p>${shown} by ${name}</p>`);
      });
      return { app, cache, errors: recorder.errors };
    };
    const a = instance('A', watched);
    const b = instance('B', keyv);
    cleanups.push(async () => {
      gate?.resolve();
      await a.cache.close();
      await b.cache.close();
    });

    expect((await request(b.app).get('/post')).headers['x-isr-cache']).toBe('MISS');
    await b.cache.idle();
    // Past its window: B serves it STALE and starts a regeneration, which holds the lease.
    clock.advanceSeconds(61);
    gate = deferred();
    expect((await request(b.app).get('/post')).headers['x-isr-cache']).toBe('STALE');
    content = 'v2';
    const revalidating = a.cache.revalidate({ tags: ['posts'], mode: 'regenerate' });
    await readSecondTime.promise; // A tried the lease and found it taken
    gate.resolve();
    expect(await revalidating).toEqual({ regenerated: 1, failed: 0, pending: 0 });
    expect(renders).toEqual({ A: 1, B: 2 });
    const page = await request(b.app).get('/post');
    expect([page.headers['x-isr-cache'], page.text]).toEqual(['HIT', '<p>v2 by A</p>']);
    expect([...a.errors, ...b.errors]).toEqual([]);
  }, 30_000);
});
