/**
 * Inspection: `cache.entry(path)` tells a page's state (fresh → stale →
 * expired), age, window, tags, size, encodings, generation time and — while a failed
 * regeneration backs off — its last error; `cache.entries({ prefix, limit })` lists pages.
 * The revalidate router answers `GET /entry?path=` and `GET /entries?prefix=&limit=` behind
 * the same secret. With Redis, the listing walks the store and shows pages only.
 */
import KeyvRedis, { createClient, createKeyv } from '@keyv/redis';
import express, { type Request, type Response } from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrOptions, isRegeneration, isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { deferred } from '../helpers/deferred';
import { RedisServer } from '../helpers/instances';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { recordedCache } from '../helpers/site';
import { sleep } from '../helpers/time';

const SECRET = 'a-webhook-secret-long-enough-1234';
/** Over 1 KB: stored with br and gzip variants. */
const BIG_PAGE = `<!doctype html><h1>A</h1>${'<p>Lorem ipsum dolor sit amet.</p>\n'.repeat(60)}`;

/** Closed after every test, even a failing one, in reverse order of opening. */
const cleanups = cleanupsAfterEach();

/**
 * `/blog/a` (big, tags posts + post-a; its regenerations fail while `failing` is set),
 * `/blog/b` (small, tag posts), `/about`, and the router at `/api/revalidate`.
 */
function setup(options: IsrOptions = {}) {
  const { clock, recorder, cache } = recordedCache({ revalidate: 60, ...options });
  cleanups.push(() => cache.close());
  const app = express();
  const state = { failing: false };
  app.use(cache);
  app.get('/blog/a', (req: Request, res: Response) => {
    if (state.failing && isRegeneration(req)) throw new Error('cms down');
    res.isr({ tags: ['posts', 'post-a'] });
    res.send(BIG_PAGE);
  });
  app.get('/blog/b', (_req: Request, res: Response) => {
    res.isr({ tags: ['posts'] });
    res.send('<h1>B</h1>');
  });
  app.get('/about', (_req: Request, res: Response) => {
    res.send('<h1>About</h1>');
  });
  app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));

  /** Requests each path once (MISS), in order, each stored before the next is requested. */
  const visit = async (...paths: string[]) => {
    for (const path of paths) {
      expect((await request(app).get(path)).status).toBe(200);
      await cache.idle();
    }
  };
  return { app, cache, clock, recorder, state, visit };
}

describe('cache.entry(path)', () => {
  test('a fresh page: age, window, tags, size, encodings, generation time', async () => {
    const { cache, clock, visit } = setup();
    const generatedAt = new Date(clock.now()).toISOString();
    await visit('/blog/a', '/about');

    const a = await cache.entry('/blog/a');
    expect(a).toMatchObject({
      url: '/blog/a',
      status: 200,
      state: 'fresh',
      age: 0,
      revalidate: 60,
      tags: ['posts', 'post-a'],
      size: Buffer.byteLength(BIG_PAGE),
      generatedAt,
    });
    expect([...(a?.encodings ?? [])].sort()).toEqual(['br', 'gzip']);
    expect(a?.lastError).toBeUndefined();

    const about = await cache.entry('/about');
    expect(about).toMatchObject({ url: '/about', state: 'fresh', tags: [], encodings: [] });
    expect(about?.size).toBe(Buffer.byteLength('<h1>About</h1>'));

    clock.advanceSeconds(10);
    expect(await cache.entry('/blog/a')).toMatchObject({ state: 'fresh', age: 10 });
  });

  test('fresh → stale (revalidatePath) → expired (mode: expire)', async () => {
    const { cache, clock, visit } = setup();
    await visit('/blog/a');
    clock.advanceSeconds(1);
    await cache.revalidatePath('/blog/a');
    const stale = await cache.entry('/blog/a');
    expect(stale?.state).toBe('stale');
    expect(stale?.reason).toEqual(expect.any(String));

    await cache.revalidatePath('/blog/a', { mode: 'expire' });
    const expired = await cache.entry('/blog/a');
    expect(expired?.state).toBe('expired');
    expect(expired?.reason).toEqual(expect.any(String));
  });

  test('fresh → stale when its window has passed', async () => {
    const { cache, clock, visit } = setup();
    await visit('/blog/b');
    clock.advanceSeconds(59);
    expect((await cache.entry('/blog/b'))?.state).toBe('fresh');
    clock.advanceSeconds(2);
    const info = await cache.entry('/blog/b');
    expect(info).toMatchObject({ state: 'stale', age: 61 });
    expect(info?.reason).toContain('60');
  });

  test('lastError { message, attempt, nextRetryAt } while a failed regeneration backs off', async () => {
    const { app, cache, clock, state, visit } = setup();
    await visit('/blog/a');
    state.failing = true;
    clock.advanceSeconds(61);
    expect((await request(app).get('/blog/a')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();

    const info = await cache.entry('/blog/a');
    expect(info?.state).toBe('stale');
    expect(info?.lastError).toEqual({
      message: expect.stringContaining('cms down'),
      attempt: 1,
      nextRetryAt: expect.any(String),
    });
    const retryAt = Date.parse(info?.lastError?.nextRetryAt ?? '');
    expect(new Date(retryAt).toISOString()).toBe(info?.lastError?.nextRetryAt);
    expect(retryAt).toBeGreaterThan(clock.now());

    // Once the app recovers and a retry succeeds, the page is fresh and the error is gone.
    state.failing = false;
    clock.advance(retryAt - clock.now() + 1);
    expect((await request(app).get('/blog/a')).headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    const healed = await cache.entry('/blog/a');
    expect(healed?.state).toBe('fresh');
    expect(healed?.lastError).toBeUndefined();
  });

  test('a page not in the cache → undefined; a query variant the key ignores → the page', async () => {
    const { cache, visit } = setup();
    await visit('/about');
    expect(await cache.entry('/nope')).toBeUndefined();
    expect((await cache.entry('/about?utm_source=mail'))?.url).toBe('/about');
  });
});

describe('cache.entries({ prefix, limit })', () => {
  test('lists only the pages under the prefix; every page without one', async () => {
    const { cache, visit } = setup();
    await visit('/blog/a', '/about', '/blog/b');
    const blog = await cache.entries({ prefix: '/blog' });
    expect(blog.entries.map((e) => e.url).sort()).toEqual(['/blog/a', '/blog/b']);
    expect(blog.truncated).toBe(false);
    expect(blog.entries.every((e) => e.state === 'fresh')).toBe(true);

    const all = await cache.entries();
    expect(all.entries.map((e) => e.url).sort()).toEqual(['/about', '/blog/a', '/blog/b']);
    expect(all.truncated).toBe(false);
  });

  test('limit truncates the list and says so; a limit that fits everything does not', async () => {
    const { cache, visit } = setup();
    // /about is stored last: the listing meets it after both /blog pages were taken.
    await visit('/blog/a', '/blog/b', '/about');
    const one = await cache.entries({ prefix: '/blog', limit: 1 });
    expect(one.entries).toHaveLength(1);
    expect(one.truncated).toBe(true);

    const two = await cache.entries({ prefix: '/blog', limit: 2 });
    expect(two.entries.map((e) => e.url).sort()).toEqual(['/blog/a', '/blog/b']);
    expect(two.truncated).toBe(false);
  });

  test('a bad limit is a TypeError', async () => {
    const { cache, visit } = setup();
    await visit('/about');
    for (const limit of [0, -1, 1.5, 1001, Number.NaN, '10' as unknown as number]) {
      await expect(cache.entries({ limit })).rejects.toThrow(TypeError);
    }
  });
});

describe('cache.entries() over a store whose walk misbehaves', () => {
  /**
   * A Keyv-shaped store over a Map whose iterator yields what is stored and then does what
   * `then` says: throws (as Keyv does on another app's non-JSON value in a namespace-less
   * Redis), or hangs (a SCAN through millions of other keys that yields nothing of ours).
   */
  function oddStore(then: 'throw' | 'hang') {
    const map = new Map<string, unknown>();
    return {
      get: async (key: string) => map.get(key),
      set: async (key: string, value: unknown) => {
        map.set(key, value);
        return true;
      },
      delete: async (key: string) => map.delete(key),
      async *iterator() {
        for (const pair of [...map].filter(([key]) => key.startsWith('/'))) yield pair;
        if (then === 'throw') throw new SyntaxError('Unexpected token s in JSON at position 0');
        await new Promise(() => {}); // never settles
      },
    };
  }

  test('a walk that throws partway: the pages found so far, truncated, and the error reported', async () => {
    const { cache, visit, recorder } = setup({ store: oddStore('throw') });
    await visit('/about');
    const listed = await cache.entries();
    expect(listed.entries.map((e) => e.url)).toEqual(['/about']);
    expect(listed.truncated).toBe(true);
    expect(recorder.errors.map((e) => e.context.phase)).toEqual(['store']);
  });

  test('a walk that stops yielding: the answer comes within the 5 s budget, truncated', async () => {
    const { cache, visit } = setup({ store: oddStore('hang') });
    await visit('/about');
    const started = Date.now();
    const listed = await cache.entries();
    expect(Date.now() - started).toBeLessThan(6000);
    expect(listed).toMatchObject({ truncated: true });
    expect(listed.entries.map((e) => e.url)).toEqual(['/about']);
  }, 10_000);
});

describe('the router: GET /entry and GET /entries behind the secret', () => {
  test('GET /entries?prefix=/blog with a Bearer secret → 200 JSON listing', async () => {
    const { app, visit } = setup();
    await visit('/blog/a', '/blog/b', '/about');
    const res = await request(app)
      .get('/api/revalidate/entries?prefix=/blog')
      .set('Authorization', `Bearer ${SECRET}`);
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body.truncated).toBe(false);
    expect(res.body.entries.map((e: { url: string }) => e.url).sort()).toEqual([
      '/blog/a',
      '/blog/b',
    ]);

    const limited = await request(app)
      .get('/api/revalidate/entries?prefix=/blog&limit=1')
      .set('Authorization', `Bearer ${SECRET}`);
    expect(limited.status).toBe(200);
    expect(limited.body.entries).toHaveLength(1);
    expect(limited.body.truncated).toBe(true);
  });

  test('GET /entry?path=/blog/a with ?secret= → 200 JSON, never a cached answer', async () => {
    const { app, cache, clock, visit } = setup();
    await visit('/blog/a');
    const url = `/api/revalidate/entry?path=/blog/a&secret=${SECRET}`;
    const first = await request(app).get(url);
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toMatch(/^application\/json/);
    expect(first.body).toMatchObject({
      url: '/blog/a',
      state: 'fresh',
      revalidate: 60,
      tags: ['posts', 'post-a'],
      size: Buffer.byteLength(BIG_PAGE),
    });

    clock.advanceSeconds(1);
    await cache.revalidatePath('/blog/a');
    const second = await request(app).get(url);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ url: '/blog/a', state: 'stale', age: 1 });
  });

  test('without the secret, or with a wrong one → 401', async () => {
    const { app, visit } = setup();
    await visit('/blog/a');
    for (const path of [
      '/api/revalidate/entries?prefix=/blog',
      '/api/revalidate/entry?path=/blog/a',
    ]) {
      expect((await request(app).get(path)).status).toBe(401);
      expect(
        (await request(app).get(path).set('Authorization', 'Bearer wrong-secret-wrong-secret'))
          .status,
      ).toBe(401);
      const wrongQuery = await request(app).get(`${path}&secret=wrong-secret-wrong-secret`);
      expect(wrongQuery.status).toBe(401);
      expect(wrongQuery.body.error).toEqual(expect.any(String));
      expect(JSON.stringify(wrongQuery.body)).not.toContain('/blog/a"');
    }
  });

  test('/entry without path → 400; an uncached path → 404; POST /entries → 405', async () => {
    const { app, visit } = setup();
    await visit('/blog/a');
    const auth = { Authorization: `Bearer ${SECRET}` };
    const noPath = await request(app).get('/api/revalidate/entry').set(auth);
    expect(noPath.status).toBe(400);
    expect(noPath.body.error).toEqual(expect.any(String));

    const unknown = await request(app).get('/api/revalidate/entry?path=/nope').set(auth);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toEqual(expect.any(String));

    const post = await request(app).post('/api/revalidate/entries').set(auth).send({});
    expect(post.status).toBe(405);
  });
});

describe('entries with a Redis Keyv store', () => {
  function redisKeyv(): Keyv {
    const keyv = new Keyv({
      store: new KeyvRedis(REDIS_URL),
      namespace: uniqueNamespace('inspection'),
    });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    return keyv;
  }

  test('lists the stored pages with their state; tag clocks are not listed', async () => {
    const keyv = redisKeyv();
    const { cache, clock, visit } = setup({ store: keyv });
    await visit('/blog/a', '/blog/b', '/about');
    clock.advanceSeconds(1);
    await cache.revalidateTag('posts'); // writes a tag clock into the same store

    const all = await cache.entries();
    expect(all.truncated).toBe(false);
    const states = Object.fromEntries(all.entries.map((e) => [e.url, e.state]));
    expect(states).toEqual({ '/about': 'fresh', '/blog/a': 'stale', '/blog/b': 'stale' });

    const blog = await cache.entries({ prefix: '/blog' });
    expect(blog.entries.map((e) => e.url).sort()).toEqual(['/blog/a', '/blog/b']);
    const a = blog.entries.find((e) => e.url === '/blog/a');
    expect(a).toMatchObject({ size: Buffer.byteLength(BIG_PAGE), tags: ['posts', 'post-a'] });
    expect([...(a?.encodings ?? [])].sort()).toEqual(['br', 'gzip']);

    expect(await cache.entry('/blog/b')).toMatchObject({ url: '/blog/b', state: 'stale' });
  });
});

describe('entries with a Keyv store that has no namespace (createKeyv(url))', () => {
  test('a render in flight (its lease is a key in the same Redis) does not cut the listing short', async () => {
    // A Redis of the test's own: without a namespace Keyv walks every key in it.
    const redis = await RedisServer.start();
    const keyv = createKeyv(redis.url);
    const cache = isr({ store: keyv, l1: false });
    const slow = deferred();
    cleanups.push(async () => {
      slow.resolve();
      await cache.close();
      await keyv.disconnect();
      await redis.stop();
    });
    const app = express();
    app.use(cache);
    app.get('/a', (_req: Request, res: Response) => {
      res.send('<p>a</p>');
    });
    app.get('/slow', async (_req: Request, res: Response) => {
      await slow.promise;
      res.send('<p>slow</p>');
    });
    await request(app).get('/a');
    await cache.idle();
    const rendering = request(app)
      .get('/slow')
      .then((r) => r.status);
    const admin = createClient({ url: redis.url });
    await admin.connect();
    cleanups.push(async () => admin.destroy());
    for (let i = 0; i < 200 && (await admin.exists('isr-lease:/slow')) === 0; i += 1) {
      await sleep(10);
    }
    expect(await admin.exists('isr-lease:/slow')).toBe(1);

    const listed = await cache.entries();
    expect(listed).toMatchObject({ truncated: false });
    expect(listed.entries.map((e) => e.url)).toEqual(['/a']);
    slow.resolve();
    expect(await rendering).toBe(200);
  }, 20_000);
});
