/**
 * Where pages are kept: the default in-memory store bounded by bytes (LRU), any Keyv instance
 * or Keyv-like object (duck-typed, bytes kept exact), Redis shared by two app instances, and
 * store failures that fail open, are reported once per outage and heal by themselves.
 */
import zlib from 'node:zlib';
import KeyvRedis from '@keyv/redis';
import type { Express } from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type CacheEntry, type IsrOptions, MemoryStore } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { rawRequest } from '../helpers/http';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { recordedCache } from '../helpers/site';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

/** Not valid UTF-8: a round trip through a string would corrupt it. */
const BINARY = Buffer.from([0xff, 0xfe, 0x00, 0x80]);
const BIG_PAGE = `<!doctype html><h1>big</h1>${'<p>Lorem ipsum dolor sit amet.</p>\n'.repeat(150)}`;

/** A Keyv-like object of the user's own: async get/set/delete over a Map, switchable off. */
function mapStore(mode: { failure: 'none' | 'reject' | 'hang' } = { failure: 'none' }) {
  const map = new Map<string, unknown>();
  const act = <T>(work: () => T): Promise<T> => {
    if (mode.failure === 'reject') return Promise.reject(new Error('store is down'));
    if (mode.failure === 'hang') return new Promise<T>(() => {});
    return Promise.resolve(work());
  };
  return {
    map,
    mode,
    get: (key: string) => act(() => map.get(key)),
    set: (key: string, value: unknown) =>
      act(() => {
        map.set(key, value);
        return true;
      }),
    delete: (key: string) => act(() => map.delete(key)),
  };
}

/** A Map-shaped Keyv storage adapter whose calls throw while `down` is set. */
function failingAdapter() {
  const map = new Map<string, unknown>();
  const state = { down: true };
  const guard = () => {
    if (state.down) throw new Error('adapter is down');
  };
  return {
    state,
    get: async (key: string) => {
      guard();
      return map.get(key);
    },
    set: async (key: string, value: unknown) => {
      guard();
      map.set(key, value);
      return true;
    },
    delete: async (key: string) => {
      guard();
      return map.delete(key);
    },
    clear: async () => map.clear(),
  };
}

describe('MemoryStore (unit)', () => {
  function entry(bodyBytes: number, extra: Partial<CacheEntry> = {}): CacheEntry {
    return {
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: Buffer.alloc(bodyBytes, 'a'),
      etag: '"e"',
      generatedAt: 0,
      revalidate: 60,
      maxStale: 86_400,
      staleIfError: 86_400,
      tags: [],
      url: '/x',
      requestHeaders: {},
      ...extra,
    };
  }

  test('counts the bytes it holds: bodies, variants, replacements and deletions', () => {
    const store = new MemoryStore({ maxSize: 1_000_000 });
    expect(store.size).toBe(0);
    store.set('a', entry(1000));
    const one = store.size;
    expect(one).toBeGreaterThanOrEqual(1000);

    store.set('b', entry(1000));
    expect(store.size).toBe(2 * one);
    store.set('a', entry(1000)); // replacing does not count twice
    expect(store.size).toBe(2 * one);
    store.set('a', entry(3000));
    expect(store.size).toBe(2 * one + 2000);
    store.set('a', entry(1000, { gzip: Buffer.alloc(300), br: Buffer.alloc(200) }));
    expect(store.size).toBe(2 * one + 500);

    store.delete('a');
    expect(store.size).toBe(one);
    store.delete('missing');
    expect(store.size).toBe(one);
    expect(store.count).toBe(1);
    store.clear();
    expect(store.size).toBe(0);
    expect(store.count).toBe(0);
  });

  test('evicts the least recently used entry first, a read counting as a use', () => {
    const probe = new MemoryStore();
    probe.set('a', entry(1000));
    const one = probe.size;

    const store = new MemoryStore({ maxSize: 3 * one });
    store.set('a', entry(1000));
    store.set('b', entry(1000));
    store.set('c', entry(1000));
    expect(store.get('a')).toBeDefined(); // a is now the most recently used
    store.set('d', entry(1000));

    expect(store.get('b')).toBeUndefined();
    expect([...store.keys()]).toEqual(['c', 'a', 'd']);
    expect(store.size).toBe(3 * one);
    expect(store.size).toBeLessThanOrEqual(store.maxSize);

    store.set('e', entry(1000)); // c is now the oldest
    expect(store.get('c')).toBeUndefined();
    expect([...store.keys()]).toEqual(['a', 'd', 'e']);
  });

  test('an entry larger than the whole store is not kept and evicts nothing', () => {
    const store = new MemoryStore({ maxSize: 5000 });
    store.set('small', entry(100));
    const before = store.size;
    store.set('huge', entry(10_000));
    expect(store.get('huge')).toBeUndefined();
    expect(store.get('small')).toBeDefined();
    expect(store.size).toBe(before);
  });

  test('rejects a maxSize that is not a positive number', () => {
    expect(() => new MemoryStore({ maxSize: 0 })).toThrow(TypeError);
    expect(() => new MemoryStore({ maxSize: Number.NaN })).toThrow(TypeError);
  });
});

describe.each(expressVersions)('stores (%s)', (_name, createApp) => {
  /** An app with the cache mounted, counted routes under `/p/:n`, a big page and a binary one. */
  function setup(options: IsrOptions) {
    const { clock, recorder, cache } = recordedCache(options);
    cleanups.push(() => cache.close());
    const app = createApp();
    const renders = new Map<string, number>();
    const count = (path: string) => renders.set(path, (renders.get(path) ?? 0) + 1);
    app.use(cache);
    app.get('/p/:n', (req, res) => {
      count(req.path);
      res.send(`<h1>page ${req.params.n}</h1>${'x'.repeat(5000)}`);
    });
    app.get('/big', (req, res) => {
      count(req.path);
      res.send(BIG_PAGE);
    });
    app.get('/binary', (req, res) => {
      count(req.path);
      res.type('text/html');
      res.send(BINARY);
    });
    return { app, cache, clock, recorder, renders: (path: string) => renders.get(path) ?? 0 };
  }

  async function missThenHit(app: Express, cache: { idle(): Promise<void> }, path: string) {
    const miss = await request(app).get(path);
    expect(miss.status).toBe(200);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    const hit = await request(app).get(path);
    expect(hit.status).toBe(200);
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    return { miss, hit };
  }

  describe('the bounded in-memory store', () => {
    /** Stores 30 distinct 5 KB pages, re-reading /p/0 after each one. */
    async function fill(app: Express, cache: { idle(): Promise<void> }, check?: () => void) {
      for (let n = 0; n < 30; n += 1) {
        const miss = await request(app).get(`/p/${n}`);
        expect(miss.headers['x-isr-cache']).toBe('MISS');
        await cache.idle();
        check?.();
        if (n > 0) {
          const reread = await request(app).get('/p/0');
          expect(reread.headers['x-isr-cache']).toBe('HIT');
        }
      }
    }

    test('a MemoryStore passed as store stays within maxSize and evicts the least recently used', async () => {
      const store = new MemoryStore({ maxSize: 50_000 });
      const { app, cache, renders } = setup({ store });
      await fill(app, cache, () => expect(store.size).toBeLessThanOrEqual(store.maxSize));
      expect(store.size).toBeLessThanOrEqual(50_000);
      expect(store.count).toBeLessThan(30);

      const recent = await request(app).get('/p/0');
      expect(recent.headers['x-isr-cache']).toBe('HIT');
      expect(renders('/p/0')).toBe(1);
      const latest = await request(app).get('/p/29');
      expect(latest.headers['x-isr-cache']).toBe('HIT');

      const early = await request(app).get('/p/1');
      expect(early.headers['x-isr-cache']).toBe('MISS');
      expect(early.text).toContain('<h1>page 1</h1>');
      expect(renders('/p/1')).toBe(2);
    });

    test('the default store is bounded by the maxSize option', async () => {
      const { app, cache, renders } = setup({ maxSize: 50_000 });
      await fill(app, cache);
      expect((await request(app).get('/p/0')).headers['x-isr-cache']).toBe('HIT');
      expect((await request(app).get('/p/1')).headers['x-isr-cache']).toBe('MISS');
      expect(renders('/p/1')).toBe(2);
    });
  });

  describe('Keyv and Keyv-like stores', () => {
    test('new Keyv() (in-memory Map adapter): MISS then HIT with the same page', async () => {
      const keyv = new Keyv();
      const { app, cache, renders } = setup({ store: keyv });
      const { miss, hit } = await missThenHit(app, cache, '/p/7');
      expect(hit.text).toBe(miss.text);
      expect(renders('/p/7')).toBe(1);
    });

    test('new Keyv(): a non-UTF-8 body is replayed byte for byte', async () => {
      const { app, cache, renders } = setup({ store: new Keyv() });
      const miss = await rawRequest(app, '/binary');
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      expect(miss.body.equals(BINARY)).toBe(true);
      await cache.idle();

      const hit = await rawRequest(app, '/binary');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['content-type']).toMatch(/^text\/html/);
      expect([...hit.body]).toEqual([...BINARY]);
      expect(renders('/binary')).toBe(1);
    });

    test('new Keyv(): br and gzip variants come back intact', async () => {
      const { app, cache } = setup({ store: new Keyv() });
      await request(app).get('/big');
      await cache.idle();

      const br = await rawRequest(app, '/big', { 'Accept-Encoding': 'br' });
      expect(br.headers['x-isr-cache']).toBe('HIT');
      expect(br.headers['content-encoding']).toBe('br');
      expect(zlib.brotliDecompressSync(br.body).toString()).toBe(BIG_PAGE);

      const gzip = await rawRequest(app, '/big', { 'Accept-Encoding': 'gzip' });
      expect(gzip.headers['x-isr-cache']).toBe('HIT');
      expect(gzip.headers['content-encoding']).toBe('gzip');
      expect(zlib.gunzipSync(gzip.body).toString()).toBe(BIG_PAGE);

      const identity = await rawRequest(app, '/big');
      expect(identity.body.toString()).toBe(BIG_PAGE);
    });

    test("the user's own Keyv-like object (async get/set/delete over a Map) works", async () => {
      const store = mapStore();
      const { app, cache, renders } = setup({ store });
      const { miss, hit } = await missThenHit(app, cache, '/p/3');
      expect(hit.text).toBe(miss.text);
      expect(store.map.size).toBeGreaterThan(0);
      expect(renders('/p/3')).toBe(1);

      const binaryMiss = await rawRequest(app, '/binary');
      expect(binaryMiss.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      const binaryHit = await rawRequest(app, '/binary');
      expect(binaryHit.headers['x-isr-cache']).toBe('HIT');
      expect([...binaryHit.body]).toEqual([...BINARY]);
    });
  });

  describe('Redis shared by two instances', () => {
    let keyv: Keyv;

    beforeEach(() => {
      keyv = new Keyv({
        store: new KeyvRedis(REDIS_URL),
        namespace: uniqueNamespace('stores'),
        useKeyPrefix: false,
      });
    });

    afterEach(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });

    test('a page rendered by app A is a HIT on app B, bytes intact and not inflated', async () => {
      const a = setup({ store: keyv });
      const b = setup({ store: keyv });
      const body = `<!doctype html>${'<p>shared through redis</p>'.repeat(400)}`.slice(0, 10_000);
      for (const instance of [a, b]) {
        instance.app.get('/shared', (_req, res) => {
          res.send(instance === a ? body : '<h1>rendered by B</h1>');
        });
      }

      const miss = await request(a.app).get('/shared');
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      await a.cache.idle();

      const hit = await request(b.app).get('/shared');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe(body);

      const stored = await (keyv.store as KeyvRedis<unknown>).get<string>('/shared');
      expect(typeof stored).toBe('string');
      expect((stored as string).length).toBeLessThan(1.5 * Buffer.byteLength(body));
      expect(stored).not.toMatch(/\[(\d{1,3},){50}/); // no JSON array of byte values

      await request(a.app).get('/binary');
      await a.cache.idle();
      const binary = await rawRequest(b.app, '/binary');
      expect(binary.headers['x-isr-cache']).toBe('HIT');
      expect([...binary.body]).toEqual([...BINARY]);
      expect(b.renders('/binary')).toBe(0);
    });
  });

  describe('store failures fail open', () => {
    /** Ten requests while the store is down: each answered by the app, one report. */
    async function duringOutage(
      app: Express,
      cache: { idle(): Promise<void> },
      renders: (path: string) => number,
    ) {
      for (let n = 0; n < 10; n += 1) {
        const response = await request(app).get('/p/1');
        expect(response.status).toBe(200);
        expect(response.text).toContain('<h1>page 1</h1>');
        await cache.idle();
      }
      expect(renders('/p/1')).toBe(10);
    }

    /** The store works again: past the circuit breaker's pause, caching resumes. */
    async function afterRecovery(
      app: Express,
      cache: { idle(): Promise<void> },
      clock: { advance(ms: number): void },
    ) {
      clock.advance(1500);
      await missThenHit(app, cache, '/p/2');
    }

    test('a store whose get rejects', async () => {
      const store = mapStore({ failure: 'reject' });
      const { app, cache, clock, recorder, renders } = setup({ store });
      await duringOutage(app, cache, renders);
      expect(recorder.errors).toHaveLength(1);
      expect(recorder.errors[0].context.phase).toBe('store');

      store.mode.failure = 'none';
      await afterRecovery(app, cache, clock);
      expect(recorder.errors).toHaveLength(1);
    });

    test('a store whose get never settles (storeTimeout: 50)', async () => {
      const store = mapStore({ failure: 'hang' });
      const { app, cache, clock, recorder, renders } = setup({ store, storeTimeout: 50 });
      await duringOutage(app, cache, renders);
      expect(recorder.errors).toHaveLength(1);
      expect(recorder.errors[0].context.phase).toBe('store');

      store.mode.failure = 'none';
      await afterRecovery(app, cache, clock);
      expect(recorder.errors).toHaveLength(1);
    });

    test('a Keyv whose adapter throws (Keyv swallows it and emits error events)', async () => {
      const adapter = failingAdapter();
      const keyv = new Keyv({ store: adapter });
      const { app, cache, clock, recorder, renders } = setup({ store: keyv });
      await duringOutage(app, cache, renders);
      expect(recorder.errors).toHaveLength(1);
      expect(recorder.errors[0].context.phase).toBe('store');

      adapter.state.down = false;
      await afterRecovery(app, cache, clock);
      expect(recorder.errors).toHaveLength(1);
    });
  });
});
