// Eviction is never a resurrection (README, "Running many instances"): a Redis under
// `maxmemory` with an `allkeys-*` policy may drop the tag clock that invalidated a page and
// keep the page. Here the eviction is done by hand (DEL of exactly the clock key), so each
// case is deterministic; __tests__/redis/redis-eviction.test.ts floods a real evicting Redis.
import { EventEmitter } from 'node:events';
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { isr } from '../../lib';
import { freshness } from '../../lib/invalidation/freshness';
import type { CacheEntry } from '../../lib/types';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { fakeClock } from '../helpers/time';

const cleanups = cleanupsAfterEach();

async function site() {
  const namespace = uniqueNamespace('evicted-clocks');
  const clock = fakeClock();
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace, useKeyPrefix: false });
  const cache = isr({ store: keyv, l1: false, now: clock.now, revalidate: false });
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  const app = express();
  let renders = 0;
  app.use(cache);
  app.get('/blog/:slug', (req, res) => {
    renders += 1;
    res.isr({ tags: ['posts'] });
    res.send(`<p>${req.params.slug} render ${renders}</p>`);
  });
  cleanups.push(async () => {
    await cache.close();
    await keyv.clear();
    await keyv.disconnect();
    admin.destroy();
  });
  const clockKey = (kind: 'stale' | 'expire', tag: string) =>
    `${namespace}::isr-tag-clock:${kind}:${tag}`;
  const visit = async (path: string) => {
    const answer = await request(app).get(path);
    await cache.idle();
    return { state: answer.headers['x-isr-cache'], text: answer.text };
  };
  return { cache, admin, clock, clockKey, visit };
}

test('every clock a stored page depends on exists in Redis, with a TTL', async () => {
  const s = await site();
  await s.visit('/blog/a');
  for (const tag of ['tag:posts', 'page:/blog/a', 'layout:/blog', 'layout:/']) {
    for (const kind of ['stale', 'expire'] as const) {
      const ttl = await s.admin.pTTL(s.clockKey(kind, tag)); // -2: missing, -1: no TTL
      expect({ tag, kind, hasTtl: ttl > 0 }).toEqual({ tag, kind, hasTtl: true });
    }
  }
});

test('an expire whose clock was evicted still keeps the page from being served', async () => {
  const s = await site();
  expect((await s.visit('/blog/a')).state).toBe('MISS');
  expect((await s.visit('/blog/a')).state).toBe('HIT');
  s.clock.advance(1);
  await s.cache.revalidateTag('posts', { mode: 'expire' });
  expect(await s.admin.del(s.clockKey('expire', 'tag:posts'))).toBe(1); // "evicted"
  const after = await s.visit('/blog/a');
  expect(after).toEqual({ state: 'MISS', text: '<p>a render 2</p>' });
});

test('a clock evicted and made again by another page’s store is still seen as lost', async () => {
  const s = await site();
  await s.visit('/blog/a');
  s.clock.advance(1);
  await s.cache.revalidateTag('posts', { mode: 'expire' });
  await s.admin.del(s.clockKey('expire', 'tag:posts'));
  s.clock.advance(1);
  // Another page with the same tag is stored: the clock exists again, as a fresh marker.
  expect((await s.visit('/blog/b')).state).toBe('MISS');
  expect(await s.admin.exists(s.clockKey('expire', 'tag:posts'))).toBe(1);
  const a = await s.visit('/blog/a');
  expect(a.state).toBe('MISS');
  expect(a.text).not.toContain('render 1');
  // Page b, stored after the marker was made, is trusted.
  expect((await s.visit('/blog/b')).state).toBe('HIT');
});

test('a stale clock evicted: the page is served STALE and regenerated, never HIT', async () => {
  const s = await site();
  await s.visit('/blog/a');
  await s.admin.del(s.clockKey('stale', 'layout:/blog'));
  const first = await s.visit('/blog/a');
  expect(first.state).toBe('STALE');
  expect((await s.visit('/blog/a')).state).toBe('HIT'); // the regenerated page, trusted again
});

test('a bump never lowers a clock (two instances racing with skewed clocks)', async () => {
  const s = await site();
  await s.visit('/blog/a');
  s.clock.advance(10_000);
  await s.cache.revalidateTag('posts');
  const key = s.clockKey('stale', 'tag:posts');
  const high = await s.admin.get(key);
  s.clock.advance(-5_000);
  await s.cache.revalidateTag('posts');
  expect(await s.admin.get(key)).toBe(high);
});

test('an expire written during a render and evicted before its store: the page is not kept', async () => {
  const namespace = uniqueNamespace('evicted-clocks-race');
  const clock = fakeClock();
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace, useKeyPrefix: false });
  const cache = isr({ store: keyv, l1: false, now: clock.now, revalidate: false });
  const admin = createClient({ url: REDIS_URL });
  await admin.connect();
  cleanups.push(async () => {
    await cache.close();
    await keyv.clear();
    await keyv.disconnect();
    admin.destroy();
  });
  // A first page, so that the clock every invalidation raises exists before the race.
  const app = express();
  let content = 'draft';
  let hold: Promise<void> | undefined;
  let rendering = () => {};
  app.use(cache);
  app.get('/:slug', async (req, res) => {
    res.isr({ tags: [`post-${req.params.slug}`] });
    const text = content;
    rendering();
    await hold;
    res.send(`<p>${req.params.slug}: ${text}</p>`);
  });
  await request(app).get('/first');
  await cache.idle();

  let release = () => {};
  hold = new Promise<void>((resolve) => {
    release = resolve;
  });
  const rendered = new Promise<void>((resolve) => {
    rendering = resolve;
  });
  clock.advance(1000);
  const during = request(app)
    .get('/secret')
    .then((r) => r);
  await rendered; // the render has read the draft
  clock.advance(1000);
  content = 'taken down';
  await cache.revalidateTag('post-secret', { mode: 'expire' }); // no stored page holds it yet
  expect(await admin.del(`${namespace}::isr-tag-clock:expire:tag:post-secret`)).toBe(1); // "evicted"
  clock.advance(1000);
  release();
  expect((await during).text).toBe('<p>secret: draft</p>'); // its own visitor asked before
  await cache.idle();
  hold = undefined;
  const after = await request(app).get('/secret');
  expect(after.headers['x-isr-cache']).toBe('MISS');
  expect(after.text).toBe('<p>secret: taken down</p>');
});

test('clocks that cannot be read: an expired page is rendered again, not served stale', async () => {
  // A Keyv adapter whose tag clocks stop answering while its pages still do (a partial
  // outage), reporting it as adapters do: an 'error' event, which Keyv passes on.
  const map = new Map<string, unknown>();
  let clocksDown = false;
  const store = Object.assign(new EventEmitter(), {
    get: async (key: string) => {
      if (clocksDown && key.includes('isr-clock:')) {
        store.emit('error', new Error('clock shard down'));
        return undefined;
      }
      return map.get(key);
    },
    set: async (key: string, value: unknown) => {
      map.set(key, value);
      return true;
    },
    delete: async (key: string) => map.delete(key),
    clear: async () => map.clear(),
  });
  const cache = isr({ store: new Keyv({ store: store as never }), onError: () => {} });
  const app = express();
  let renders = 0;
  app.use(cache);
  app.get('/post', (_req, res) => {
    renders += 1;
    res.send(`<p>render ${renders}</p>`);
  });
  cleanups.push(() => cache.close());
  await request(app).get('/post');
  await cache.idle();
  await cache.revalidatePath('/post', { mode: 'expire' });
  clocksDown = true;
  const answer = await request(app).get('/post');
  expect(answer.text).toBe('<p>render 2</p>');
  expect(answer.headers['x-isr-cache']).toBe('MISS');
});

describe('freshness with a lost clock (unit)', () => {
  const page: CacheEntry = {
    status: 200,
    headers: {},
    body: Buffer.from('x'),
    etag: '"x"',
    generatedAt: 1000,
    revalidate: 60,
    maxStale: 600,
    staleIfError: 600,
    tags: [],
    url: '/x',
    requestHeaders: {},
  };
  test('expire clock lost: expired, and not a stand-in for a failed render', () => {
    expect(freshness(page, 2000, { stale: 0, expire: 0, lost: 'expire' })).toEqual({
      state: 'expired',
      reason: 'an invalidation record it needs is gone or unreadable',
    });
  });
  test('stale clock lost: stale since the render, so past maxStale it is rendered', () => {
    expect(freshness(page, 2000, { stale: 0, expire: 0, lost: 'stale' }).state).toBe('stale');
    expect(freshness(page, 1000 + 601_000, { stale: 0, expire: 0, lost: 'stale' }).state).toBe(
      'expired',
    );
  });
  test('another version’s page is never fresh', () => {
    expect(freshness({ ...page, version: 'a' }, 2000, { stale: 0, expire: 0 }, 'b')).toEqual({
      state: 'stale',
      reason: 'rendered by version a',
    });
  });
});
