/**
 * Many instances on one Redis: pages rendered once in total across processes (cold
 * and stale), shared pages, a webhook on one instance refreshing all of them (with and without
 * the in-process L1), L1 coherence when pub/sub drops, Redis killed mid-load and Redis down
 * from the start (fail open), the `redis://` shorthand, compact entries, and a regeneration
 * racing an `expire` invalidation. Instances are real processes (`fixtures/instance.ts`);
 * outages happen on throwaway `redis-server`s of the test's own. Needs Redis at REDIS_URL:
 * the suite fails (never skips) when it is not reachable.
 */
import { randomBytes } from 'node:crypto';
import zlib from 'node:zlib';
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { rawRequest } from '../helpers/http';
import { type Answer, freePort, Instance, RedisServer, stopEverything } from '../helpers/instances';
import { lateReader } from '../helpers/late-reader';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { fakeClock, sleep, waitFor } from '../helpers/time';

/** A node-redis client of the test's own: no reconnecting, so a dead server fails fast. */
function newClient(url: string) {
  const client = createClient({ url, socket: { connectTimeout: 2000, reconnectStrategy: false } });
  client.on('error', () => {});
  return client;
}
type Client = ReturnType<typeof newClient>;

const SECRET = 'redis-shared-webhook-secret-0123456789';
/** The bound for an invalidation to reach every instance's L1. */
const PROPAGATION_MS = 100;

/** The shared Redis at REDIS_URL, for render counters, content versions and clean-up. */
let redis: Client;

beforeAll(async () => {
  redis = await connect(REDIS_URL);
});

afterAll(async () => {
  if (redis !== undefined) closeClient(redis);
});

/** Everything a test opened, closed after it even when it failed, most recent first. */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopEverything();
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Closes a client whatever its state (a throwaway server may be gone already). */
function closeClient(client: Client): void {
  if (client.isOpen) client.destroy();
}

/** A connected node-redis client; throws (failing the suite) when Redis is not reachable. */
async function connect(url: string): Promise<Client> {
  const client = newClient(url);
  try {
    await client.connect();
    await client.ping();
  } catch (error) {
    closeClient(client);
    throw new Error(
      `Redis is not reachable at ${url} (${(error as Error).message}): the shared-store suite needs it`,
    );
  }
  return client;
}

/** A namespace of this test's own on the shared Redis, deleted afterwards (and only it). */
function namespace(label: string): string {
  const ns = uniqueNamespace(`redis-shared-${label}`);
  cleanups.push(() => deleteMatching(redis, `${ns}:*`));
  return ns;
}

async function deleteMatching(client: Client, pattern: string): Promise<void> {
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    keys.push(...batch);
  }
  if (keys.length > 0) await client.del(keys);
}

async function rendersOf(client: Client, ns: string, path: string): Promise<number> {
  return Number((await client.get(`${ns}:renders:${path}`)) ?? 0);
}

async function setVersion(client: Client, ns: string, version: string): Promise<void> {
  await client.set(`${ns}:version`, version);
}

function versionIn(body: string): string | undefined {
  return /version=([^<\s]+)/.exec(body)?.[1];
}

function startInstances(
  count: number,
  options: { redisUrl?: string; namespace: string; l1: boolean; renderMs?: number },
): Promise<Instance[]> {
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      Instance.start(String.fromCharCode(65 + i), {
        redisUrl: options.redisUrl ?? REDIS_URL,
        namespace: options.namespace,
        l1: options.l1,
        secret: SECRET,
        renderMs: options.renderMs,
      }),
    ),
  );
}

/** `total` concurrent GETs of `path`, request i going to instance i mod N. */
function spread(instances: Instance[], total: number, path: string): Promise<Answer[]> {
  return Promise.all(
    Array.from({ length: total }, (_, i) => instances[i % instances.length].get(path)),
  );
}

/** Waits until the page's entry is in Redis (stores finish after the response). */
function entryStored(client: Client, ns: string, path: string): Promise<void> {
  return waitFor(
    `${path} stored in Redis`,
    async () => (await client.exists(`${ns}::${path}`)) === 1,
  );
}

/**
 * Waits until `instance` serves from its in-process copy (L1): a page whose Redis key was
 * deleted behind its back is still a HIT there. Without this, an L1 test could pass only
 * because L1 had not started yet.
 */
async function untilL1Serves(instance: Instance, client: Client, ns: string): Promise<void> {
  const path = `/page/l1-probe-${instance.name}`;
  await waitFor(
    `instance ${instance.name} serving from L1`,
    async () => {
      await instance.get(path);
      await entryStored(client, ns, path);
      await instance.get(path); // a HIT from Redis is copied into L1 when L1 is serving
      await client.del(`${ns}::${path}`);
      return (await instance.get(path)).state === 'HIT';
    },
    8000,
  );
}

/** A state and content version, e.g. `STALE v1`, for readable failure messages. */
function seen(answer: Answer): string {
  return `${answer.status} ${answer.state} ${versionIn(answer.body)}`;
}

describe('many instances on one Redis', () => {
  describe.each([2, 4])('%i instances', (count) => {
    test('100 concurrent requests for a cold page, then for a stale page: one render each time', async () => {
      const ns = namespace(`flight-${count}`);
      await setVersion(redis, ns, 'v1');
      const instances = await startInstances(count, { namespace: ns, l1: true });

      const cold = await spread(instances, 100, '/page/cold');
      expect(cold.filter((a) => a.status !== 200).map(seen)).toEqual([]);
      expect(new Set(cold.map((a) => a.body)).size).toBe(1);
      expect(versionIn(cold[0].body)).toBe('v1');
      expect(cold.filter((a) => a.state !== 'MISS' && a.state !== 'HIT').map(seen)).toEqual([]);
      expect(await rendersOf(redis, ns, '/page/cold')).toBe(1);

      await entryStored(redis, ns, '/page/cold');
      await setVersion(redis, ns, 'v2');
      const hook = await instances[0].revalidate({ path: '/page/cold', mode: 'stale' }, SECRET);
      expect(hook.status).toBe(200);

      const stale = await spread(instances, 100, '/page/cold');
      // Each answer is the old page served STALE, or the regenerated page: never the old one
      // as a HIT, never a render of its own.
      const wrong = stale.filter(
        (a) =>
          a.status !== 200 ||
          !(
            (a.state === 'STALE' && versionIn(a.body) === 'v1') ||
            (a.state === 'HIT' && versionIn(a.body) === 'v2')
          ),
      );
      expect(wrong.map(seen)).toEqual([]);
      await waitFor('every instance serving the regenerated page', async () => {
        const answers = await Promise.all(instances.map((i) => i.get('/page/cold')));
        return answers.every((a) => a.state === 'HIT' && versionIn(a.body) === 'v2');
      });
      expect(await rendersOf(redis, ns, '/page/cold')).toBe(2);
    }, 40_000);
  });

  test('a page rendered by instance A is a HIT on instance B, and instances exit cleanly', async () => {
    const ns = namespace('shared');
    await setVersion(redis, ns, 'v1');
    const [a, b] = await startInstances(2, { namespace: ns, l1: true });

    const miss = await a.get('/page/shared');
    expect(miss.status).toBe(200);
    expect(miss.state).toBe('MISS');
    await entryStored(redis, ns, '/page/shared');

    const hit = await b.get('/page/shared');
    expect(hit.status).toBe(200);
    expect(hit.state).toBe('HIT');
    expect(hit.body).toBe(miss.body);
    expect(await rendersOf(redis, ns, '/page/shared')).toBe(1);

    // SIGTERM: server, cache and Redis clients closed, exit code 0.
    expect(await a.stop()).toEqual({ code: 0, signal: null });
    expect(await b.stop()).toEqual({ code: 0, signal: null });
  }, 30_000);

  describe.each([
    ['L1 on', true],
    ['L1 off', false],
  ])('a webhook on one instance refreshes the page on all of them (%s)', (_label, l1) => {
    test('mode stale: every instance serves it STALE, then the new version; mode expire: the old body never again', async () => {
      const ns = namespace(`webhook-${l1 ? 'l1' : 'no-l1'}`);
      await setVersion(redis, ns, 'v1');
      const instances = await startInstances(3, { namespace: ns, l1 });
      const [a, b] = instances;
      if (l1) for (const instance of instances) await untilL1Serves(instance, redis, ns);

      // Warm: rendered once, then a HIT everywhere (read twice: the second read is L1's).
      expect((await a.get('/page/news')).state).toBe('MISS');
      await entryStored(redis, ns, '/page/news');
      for (const instance of instances) {
        for (let n = 0; n < 2; n += 1) {
          const warm = await instance.get('/page/news');
          expect(seen(warm)).toBe('200 HIT v1');
        }
      }

      await setVersion(redis, ns, 'v2');
      const hook = await a.revalidate({ path: '/page/news', mode: 'stale' }, SECRET);
      expect(hook.status).toBe(200);
      await sleep(PROPAGATION_MS);
      // All at once, within the regeneration's 80 ms: each instance serves the old page STALE.
      const stale = await Promise.all(instances.map((i) => i.get('/page/news')));
      expect(stale.map(seen)).toEqual(instances.map(() => '200 STALE v1'));

      await waitFor('every instance serving v2', async () => {
        const answers = await Promise.all(instances.map((i) => i.get('/page/news')));
        return answers.every((x) => seen(x) === '200 HIT v2');
      });
      expect(await rendersOf(redis, ns, '/page/news')).toBe(2);

      // Expire through another instance: nobody serves v2 again.
      await setVersion(redis, ns, 'v3');
      const expire = await b.revalidate({ path: '/page/news', mode: 'expire' }, SECRET);
      expect(expire.status).toBe(200);
      await sleep(PROPAGATION_MS);
      const after: Answer[] = [];
      for (let round = 0; round < 5; round += 1) {
        after.push(...(await Promise.all(instances.map((i) => i.get('/page/news')))));
      }
      expect(after.filter((x) => x.status !== 200 || versionIn(x.body) !== 'v3').map(seen)).toEqual(
        [],
      );
      expect(after.slice(0, instances.length).map((x) => x.state)).toEqual(
        instances.map(() => 'MISS'),
      );
      // The expired page is a cold page again: one render across all instances.
      expect(await rendersOf(redis, ns, '/page/news')).toBe(3);
    }, 40_000);
  });

  test('L1 never serves a page invalidated while pub/sub was down, and serves again once it is back', async () => {
    const server = await RedisServer.start();
    const client = await connect(server.url);
    cleanups.push(async () => closeClient(client));
    const ns = uniqueNamespace('redis-shared-pubsub');
    await setVersion(client, ns, 'v1');
    const [a, b] = await startInstances(2, { redisUrl: server.url, namespace: ns, l1: true });
    await untilL1Serves(a, client, ns);
    await untilL1Serves(b, client, ns);

    expect((await a.get('/page/doc')).state).toBe('MISS');
    await entryStored(client, ns, '/page/doc');
    for (const instance of [a, b, a, b]) {
      expect(seen(await instance.get('/page/doc'))).toBe('200 HIT v1');
    }

    // Every pub/sub connection on this (throwaway) server is cut; the invalidation goes out
    // right away, while the instances have no subscription to hear it.
    await setVersion(client, ns, 'v2');
    await client.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    const hook = await a.revalidate({ path: '/page/doc', mode: 'stale' }, SECRET);
    expect(hook.status).toBe(200);
    const onB = await b.get('/page/doc');
    expect(onB.status).toBe(200);
    expect(seen(onB)).not.toBe('200 HIT v1');

    // Once reconnected, B serves the new page, from L1 again, and hears invalidations again.
    await waitFor('B serving v2', async () => seen(await b.get('/page/doc')) === '200 HIT v2');
    await untilL1Serves(b, client, ns);
    expect(seen(await b.get('/page/doc'))).toBe('200 HIT v2');
    expect(seen(await b.get('/page/doc'))).toBe('200 HIT v2');
    await setVersion(client, ns, 'v3');
    expect((await a.revalidate({ path: '/page/doc', mode: 'stale' }, SECRET)).status).toBe(200);
    await sleep(PROPAGATION_MS);
    expect(seen(await b.get('/page/doc'))).toBe('200 STALE v2');
    await waitFor('B serving v3', async () => seen(await b.get('/page/doc')) === '200 HIT v3');
  }, 40_000);

  test('Redis killed and restarted mid-load: zero failed requests, caching resumes by itself', async () => {
    const server = await RedisServer.start();
    const ns = uniqueNamespace('redis-shared-outage');
    const [a, b] = await startInstances(2, { redisUrl: server.url, namespace: ns, l1: true });

    const total = 400;
    const killAt = 100;
    const restartAt = 200;
    const outcomes: { i: number; answer?: Answer; error?: string }[] = [];
    let next = 0;
    let killed: Promise<void> | undefined;
    let restarted: Promise<void> | undefined;
    const worker = async () => {
      for (let i = next++; i < total; i = next++) {
        if (i === killAt) killed = server.kill();
        if (i === restartAt)
          restarted = (async () => {
            await killed;
            await server.restart();
          })();
        const instance = i % 2 === 0 ? a : b;
        try {
          // Answered within 2 s, or it counts as failed.
          outcomes.push({ i, answer: await instance.get(`/page/load-${i % 8}`, 2000) });
        } catch (error) {
          outcomes.push({ i, error: (error as Error).message });
        }
      }
    };
    await Promise.all([worker(), worker(), worker(), worker()]);
    await restarted;

    expect(outcomes).toHaveLength(total);
    const failed = outcomes.filter((o) => o.error !== undefined || o.answer?.status !== 200);
    expect(failed.map((o) => `#${o.i}: ${o.error ?? seen(o.answer as Answer)}`)).toEqual([]);
    for (const o of outcomes) expect((o.answer as Answer).body).toContain(`/page/load-${o.i % 8}`);

    // Caching works again: a fresh page is a MISS on A, then a HIT on B (through Redis).
    let n = 0;
    await waitFor(
      'a MISS then a HIT on a fresh page after the restart',
      async () => {
        n += 1;
        const path = `/page/after-${n}`;
        if ((await a.get(path)).state !== 'MISS') return false;
        for (let tries = 0; tries < 10; tries += 1) {
          if ((await b.get(path)).state === 'HIT') return true;
          await sleep(50);
        }
        return false;
      },
      10_000,
    );

    // The outage is reported once per instance, not once per request; nothing crashed.
    for (const instance of [a, b]) {
      expect(instance.stderr).not.toMatch(/UNHANDLED-REJECTION|START-FAILED/);
      const phases = instance.reportedErrors.map((line) => line.split(' ')[1]);
      expect(phases.filter((phase) => phase === 'store')).toHaveLength(1);
      expect(phases.length).toBeLessThanOrEqual(2);
    }
  }, 60_000);
});

describe('Redis down from the start (store: "redis://" to a closed port)', () => {
  test('every request is rendered by the app, the outage is reported once, close() resolves', async () => {
    const port = await freePort();
    // An unhandled rejection during the test fails it (Jest attributes it to the running test).
    const recorder = errorRecorder();

    const cache = isr({
      store: `redis://127.0.0.1:${port}`,
      onError: recorder.onError,
      logger: recorder.logger,
    });
    // close() is checked below; this closes it too when an expect fails before.
    cleanups.push(() => cache.close());
    const app = express();
    let renders = 0;
    app.use(cache);
    app.get('/down/:n', (req, res) => {
      renders += 1;
      res.type('html').send(`<p>rendered ${req.params.n}</p>`);
    });

    for (let n = 0; n < 20; n += 1) {
      const response = await request(app).get(`/down/${n}`);
      expect(response.status).toBe(200);
      expect(response.text).toBe(`<p>rendered ${n}</p>`);
    }
    expect(renders).toBe(20);
    await cache.idle();
    await cache.close();

    expect(recorder.errors.map((e) => e.context.phase)).toEqual(['store']);
  }, 20_000);
});

describe('store: "redis://…" shorthand', () => {
  test('a page stored by one instance is a HIT on another using the same URL', async () => {
    const marker = randomBytes(6).toString('hex');
    const path = `/redis-shared-shorthand-${marker}`;
    // Only keys carrying this test's random marker are removed (page, lease, clocks).
    cleanups.push(() => deleteMatching(redis, `*redis-shared-shorthand-${marker}*`));

    const site = (label: string) => {
      const cache = isr({ store: REDIS_URL });
      cleanups.push(() => cache.close());
      const app = express();
      let renders = 0;
      app.use(cache);
      app.get(path, (_req, res) => {
        renders += 1;
        res.type('html').send(`<p>rendered by ${label}</p>`);
      });
      return { app, cache, renders: () => renders };
    };
    const a = site('A');
    const b = site('B');

    const miss = await request(a.app).get(path);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await a.cache.idle();
    const again = await request(a.app).get(path);
    expect(again.headers['x-isr-cache']).toBe('HIT');
    const hit = await request(b.app).get(path);
    expect(hit.status).toBe(200);
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<p>rendered by A</p>');
    expect(b.renders()).toBe(0);
    expect(await redis.exists(`express-isr::${path}`)).toBe(1);
  });
});

describe('entries stored compactly in Redis', () => {
  /** Realistic, varied HTML (compresses like a real page, not like one repeated word). */
  function htmlPage(bytes: number): string {
    const words =
      'the quick brown fox jumps over lazy dog cache page render stale fresh redis'.split(' ');
    let seed = 7;
    let html = '<!doctype html><main>';
    while (html.length < bytes - 20) {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      html += `<p id="p${seed % 9973}">${words[seed % words.length]} ${seed.toString(36)}</p>`;
    }
    return `${html}</main>`.padEnd(bytes, ' ').slice(0, bytes);
  }

  function keyvFor(ns: string): Keyv {
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    return keyv;
  }

  test('a 20 KB page takes less than 1.5x its bytes (base64, not a JSON array of numbers)', async () => {
    const ns = namespace('compact');
    const body = htmlPage(20 * 1024);
    const cache = isr({ store: keyvFor(ns), compress: false });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/compact', (_req, res) => {
      res.type('html').send(body);
    });

    expect((await request(app).get('/compact')).headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    const hit = await request(app).get('/compact');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe(body);

    const stored = await redis.strLen(`${ns}::/compact`);
    expect(stored).toBeGreaterThan(0);
    expect(stored).toBeLessThan(1.5 * Buffer.byteLength(body));
    expect(await redis.get(`${ns}::/compact`)).not.toMatch(/\[(\d{1,3},){50}/);
  });

  test('with br and gzip variants, stored size stays under 1.5x the bytes of the three variants', async () => {
    const ns = namespace('compact-variants');
    const body = htmlPage(20 * 1024);
    const cache = isr({ store: keyvFor(ns) });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/variants', (_req, res) => {
      res.type('html').send(body);
    });

    await request(app).get('/variants');
    await cache.idle();
    const identity = await rawRequest(app, '/variants');
    const br = await rawRequest(app, '/variants', { 'accept-encoding': 'br' });
    const gzip = await rawRequest(app, '/variants', { 'accept-encoding': 'gzip' });
    for (const r of [identity, br, gzip]) expect(r.headers['x-isr-cache']).toBe('HIT');
    expect(br.headers['content-encoding']).toBe('br');
    expect(gzip.headers['content-encoding']).toBe('gzip');
    expect(zlib.brotliDecompressSync(br.body).toString()).toBe(body);

    const variants = identity.body.length + br.body.length + gzip.body.length;
    const stored = await redis.strLen(`${ns}::/variants`);
    expect(stored).toBeLessThan(1.5 * variants);
  });
});

describe('a regeneration racing an expire invalidation', () => {
  test.each([
    ['the instance that regenerated', 'A'],
    ['the instance that expired it', 'B'],
  ])('loses: the next request on %s is a MISS with fresh content', async (_label, next) => {
    const ns = namespace('race');
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    const clock = fakeClock();
    const content = { version: 'v1' };
    let gate: ReturnType<typeof deferred<void>> | undefined;
    let renders = 0;
    const site = () => {
      const cache = isr({ store: keyv, now: clock.now, revalidate: 10 });
      cleanups.push(() => cache.close());
      const app = express();
      app.use(cache);
      app.get('/race', async (_req, res) => {
        renders += 1;
        const version = content.version;
        if (gate) await gate.promise;
        res.type('html').send(`<p>race version=${version}</p>`);
      });
      return { app, cache };
    };
    const a = site();
    const b = site();

    expect((await request(a.app).get('/race')).headers['x-isr-cache']).toBe('MISS');
    await a.cache.idle();
    expect((await request(b.app).get('/race')).headers['x-isr-cache']).toBe('HIT');

    // The page goes stale; A's regeneration starts (rendering v2) and is held open.
    clock.advanceSeconds(11);
    content.version = 'v2';
    gate = deferred();
    const stale = await request(a.app).get('/race');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<p>race version=v1</p>');
    await waitFor('the regeneration running', async () => renders === 2);

    // Meanwhile the page is expired on B (unpublished), then the regeneration finishes.
    clock.advanceSeconds(1);
    content.version = 'v3';
    await b.cache.revalidatePath('/race', { mode: 'expire' });
    clock.advanceSeconds(1);
    const held = gate;
    gate = undefined;
    held.resolve();
    await a.cache.idle();

    const first = next === 'A' ? a : b;
    const other = next === 'A' ? b : a;
    const fresh = await request(first.app).get('/race');
    expect(`${fresh.headers['x-isr-cache']} ${fresh.text}`).toBe('MISS <p>race version=v3</p>');
    await first.cache.idle();
    const afterwards = await request(other.app).get('/race');
    expect(afterwards.text).toBe('<p>race version=v3</p>');
    expect(renders).toBe(3);
  });
});

describe('one render in total, even for a request that read Redis just before another instance finished', () => {
  function twoInstances(label: string) {
    const ns = namespace(label);
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    const late = lateReader(keyv);
    const clock = fakeClock();
    let renders = 0;
    const site = (store: typeof keyv | typeof late.keyv) => {
      // L1 off: every lookup reads Redis. A long store timeout: the paused read is not a failure.
      const cache = isr({ store, l1: false, now: clock.now, revalidate: 10, storeTimeout: 5000 });
      cleanups.push(() => cache.close());
      const app = express();
      app.use(cache);
      app.get('/late', async (_req, res) => {
        renders += 1;
        const n = renders;
        await sleep(20);
        res.type('html').send(`<p>render ${n}</p>`);
      });
      return { app, cache };
    };
    return { a: site(keyv), b: site(late.keyv), late, clock, renders: () => renders };
  }

  test('cold page: B missed before A rendered it; B serves A’s render instead of rendering again', async () => {
    const { a, b, late, renders } = twoInstances('late-cold');
    const paused = late.pauseNextGet('/late');
    const onB = request(b.app)
      .get('/late')
      .then((r) => r);
    await paused.read; // B found nothing

    const onA = await request(a.app).get('/late');
    expect(`${onA.headers['x-isr-cache']} ${onA.text}`).toBe('MISS <p>render 1</p>');
    await a.cache.idle(); // stored, lease released
    paused.release();

    const answer = await onB;
    expect(answer.status).toBe(200);
    expect(answer.text).toBe('<p>render 1</p>');
    await b.cache.idle();
    expect(renders()).toBe(1);
  });

  test('stale page: B read the stale page before A’s regeneration finished; no second regeneration', async () => {
    const { a, b, late, clock, renders } = twoInstances('late-stale');
    expect((await request(a.app).get('/late')).headers['x-isr-cache']).toBe('MISS');
    await a.cache.idle();
    clock.advanceSeconds(11);

    const paused = late.pauseNextGet('/late');
    const onB = request(b.app)
      .get('/late')
      .then((r) => r);
    await paused.read; // B holds the stale page

    const onA = await request(a.app).get('/late');
    expect(`${onA.headers['x-isr-cache']} ${onA.text}`).toBe('STALE <p>render 1</p>');
    await a.cache.idle(); // regenerated (render 2), stored, lease released
    expect(renders()).toBe(2);
    paused.release();

    const answer = await onB;
    expect(`${answer.headers['x-isr-cache']} ${answer.text}`).toBe('STALE <p>render 1</p>');
    await b.cache.idle();
    expect(renders()).toBe(2);
    const next = await request(b.app).get('/late');
    expect(`${next.headers['x-isr-cache']} ${next.text}`).toBe('HIT <p>render 2</p>');
  });
});
