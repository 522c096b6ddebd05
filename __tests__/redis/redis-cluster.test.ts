/**
 * Many instances on a Redis Cluster: two `isr()` instances, each with its own
 * Keyv + `@keyv/redis` cluster client, share a 3-master cluster that this suite starts on
 * loopback. Pages, tag clocks, leases and pub/sub events must work when their keys live on
 * different shards: shared pages, one render in total, tag clocks read across slots, coherent
 * L1 copies, leases taken and released, and the webhook reaching the other instance.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import KeyvRedis, { createCluster, type RedisConnectionClusterType } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrMiddleware, type IsrOptions, isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { uniqueNamespace } from '../helpers/redis';
import { type RedisCluster, startRedisCluster } from '../helpers/redis-cluster';
import { fakeClock, sleep, waitFor } from '../helpers/time';

jest.setTimeout(20_000);

const SECRET = 'cluster-webhook-secret-0123456789';

let cluster: RedisCluster;

beforeAll(async () => {
  cluster = await startRedisCluster({ masters: 3, timeoutMs: 25_000 });
}, 30_000);

afterAll(async () => {
  await cluster?.stop();
});

/** Closed after every test, even a failing one, in reverse order of opening. */
const cleanups = cleanupsAfterEach();

/**
 * Lets a pub/sub event cross the cluster bus: another instance's in-process copy (L1) may lag
 * behind the shared store by up to 100 ms, so its next answer is checked after 50.
 */
const propagate = () => sleep(50);

/** What the routes of both instances share: they are "the same site" on two servers. */
interface Site {
  renders: Map<string, number>;
  /** The content version a render shows (read when the render starts). */
  version: string;
  /** Tags each path sets through `res.isr`. */
  tags: Record<string, string[]>;
  /** While set, every render waits for it: a render "in progress". */
  gate: ReturnType<typeof deferred<void>> | undefined;
  /** Requests that reached either app (before the cache). */
  arrivals: number;
}

interface Instance {
  name: string;
  app: express.Express;
  cache: IsrMiddleware;
  keyv: Keyv;
  recorder: ReturnType<typeof errorRecorder>;
}

/**
 * Two instances (A and B) of one site, each with its own cluster client, in one namespace.
 * Bodies say which instance rendered them, so a HIT on B of A's page is visible.
 */
async function twoInstances(options: IsrOptions = {}, { connectFirst = true } = {}) {
  const namespace = uniqueNamespace('cluster');
  const clock = fakeClock();
  const site: Site = { renders: new Map(), version: 'v1', tags: {}, gate: undefined, arrivals: 0 };

  const instance = (name: string): Instance => {
    const keyv = new Keyv({
      // createCluster's default generics are narrower than what KeyvRedis's signature lists.
      store: new KeyvRedis(
        createCluster({ rootNodes: cluster.rootNodes }) as RedisConnectionClusterType,
      ),
      namespace,
      useKeyPrefix: false,
    });
    const recorder = errorRecorder();
    const cache = isr({
      store: keyv,
      now: clock.now,
      onError: recorder.onError,
      logger: recorder.logger,
      ...options,
    });
    const app = express();
    app.use((_req, _res, next) => {
      site.arrivals += 1;
      next();
    });
    app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
    app.use(cache);
    app.get(/^\/.*/, async (req, res) => {
      site.renders.set(req.path, (site.renders.get(req.path) ?? 0) + 1);
      const version = site.version;
      const tags = site.tags[req.path];
      if (tags) res.isr({ tags });
      if (site.gate) await site.gate.promise;
      res.send(`<p>${req.path} ${version} by ${name}</p>`);
    });
    return { name, app, cache, keyv, recorder };
  };

  const a = instance('A');
  const b = instance('B');
  if (connectFirst) {
    // Connected before the first request, so that each test checks its own behaviour and not
    // the start-up race that 'cluster clients not connected yet' covers.
    await (a.keyv.store as KeyvRedis<unknown>).getClient();
    await (b.keyv.store as KeyvRedis<unknown>).getClient();
  }
  cleanups.push(async () => {
    site.gate?.resolve();
    await Promise.all([a.cache.close(), b.cache.close()]);
    await a.keyv.clear();
    await Promise.all([a.keyv.disconnect(), b.keyv.disconnect()]);
  });
  /** The key Redis holds for a page or clock: `@keyv/redis` prefixes it with `namespace::`. */
  const redisKey = (key: string) => `${namespace}::${key}`;
  return {
    a,
    b,
    clock,
    site,
    namespace,
    redisKey,
    renders: (path: string) => site.renders.get(path) ?? 0,
  };
}

/** `count` distinct names from `make(i)` whose Redis keys land on every master (in order). */
async function spreadOverMasters(
  count: number,
  make: (i: number) => string,
  keyOf: (name: string) => string,
): Promise<{ name: string; port: number }[]> {
  const chosen: { name: string; port: number }[] = [];
  const covered = new Set<number>();
  for (let i = 0; chosen.length < count && i < 500; i += 1) {
    const name = make(i);
    const port = await cluster.nodeOf(keyOf(name));
    // First one per master, then anything, until there are `count`.
    if (!covered.has(port) || covered.size === cluster.ports.length) {
      covered.add(port);
      chosen.push({ name, port });
    }
  }
  expect(covered.size).toBe(cluster.ports.length);
  return chosen;
}

async function expectVisit(
  instance: Instance,
  path: string,
  state: string,
  body: string | RegExp,
): Promise<void> {
  const res = await request(instance.app).get(path);
  expect({
    path,
    on: instance.name,
    status: res.status,
    cache: res.headers['x-isr-cache'],
  }).toEqual({
    path,
    on: instance.name,
    status: 200,
    cache: state,
  });
  if (typeof body === 'string') expect(res.text).toBe(body);
  else expect(res.text).toMatch(body);
}

/** Nothing was reported: no store outage, no failed lease or publish, no regeneration error. */
function expectNoTrouble(...instances: Instance[]): void {
  for (const { name, recorder } of instances) {
    expect({
      name,
      errors: recorder.errors.map(({ error, context }) => ({ message: error.message, context })),
    }).toEqual({
      name,
      errors: [],
    });
    expect({ name, warnings: recorder.warnings }).toEqual({ name, warnings: [] });
  }
}

/** Both apps on real ports, for truly concurrent requests. */
async function listen(...instances: Instance[]): Promise<string[]> {
  const servers: Server[] = [];
  const urls: string[] = [];
  for (const { app } of instances) {
    const server = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    servers.push(server);
    urls.push(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  }
  cleanups.push(async () => {
    for (const server of servers) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
  return urls;
}

async function fetchPage(
  url: string,
): Promise<{ status: number; cache: string | null; body: string }> {
  const res = await fetch(url);
  return { status: res.status, cache: res.headers.get('x-isr-cache'), body: await res.text() };
}

describe('two instances on a 3-master Redis Cluster', () => {
  test('cluster clients not connected yet: the very first pages are stored and shared, no store outage', async () => {
    const { a, b } = await twoInstances({}, { connectFirst: false });
    await expectVisit(a, '/first', 'MISS', '<p>/first v1 by A</p>');
    await a.cache.idle();
    expectNoTrouble(a);
    await expectVisit(b, '/first', 'HIT', '<p>/first v1 by A</p>');
    expectNoTrouble(b);
  });

  test('pages rendered by A are HITs on B, with their keys on every shard', async () => {
    const { a, b, redisKey, renders, namespace } = await twoInstances();
    const pages = await spreadOverMasters(
      6,
      (i) => `/articles/${i}`,
      (path) => redisKey(path),
    );

    for (const { name } of pages) await expectVisit(a, name, 'MISS', `<p>${name} v1 by A</p>`);
    await a.cache.idle();
    for (const { name } of pages) await expectVisit(b, name, 'HIT', `<p>${name} v1 by A</p>`);
    for (const { name } of pages) expect(renders(name)).toBe(1);

    // Each page's entry really is on the master that owns its slot: 3 shards hold pages.
    const byNode = await cluster.keysByNode(`${namespace}::/articles/*`);
    for (const { name, port } of pages) expect(byNode.get(port)).toContain(redisKey(name));
    const shardsWithPages = [...byNode.values()].filter((keys) => keys.length > 0);
    expect(shardsWithPages.length).toBe(3);
    expectNoTrouble(a, b);
  });

  test('one render in total for a cold page, then one regeneration for the stale page (50 requests over A and B)', async () => {
    const { a, b, clock, site, renders } = await twoInstances();
    const [urlA, urlB] = await listen(a, b);
    const path = '/cold';

    // Cold: every render is held until all 50 requests reached the apps.
    site.gate = deferred();
    const cold = Array.from({ length: 50 }, (_, i) => fetchPage(`${i % 2 ? urlB : urlA}${path}`));
    await waitFor('site.arrivals >= 50', async () => site.arrivals >= 50, 5000);
    await sleep(50); // their lookups and lease attempts are done by now
    site.gate.resolve();
    site.gate = undefined;
    const first = await Promise.all(cold);
    expect(renders(path)).toBe(1);
    expect(new Set(first.map((r) => r.status))).toEqual(new Set([200]));
    expect(new Set(first.map((r) => r.cache))).toEqual(new Set(['MISS']));
    expect(new Set(first.map((r) => r.body)).size).toBe(1);
    const v1 = first[0].body;
    await Promise.all([a.cache.idle(), b.cache.idle()]);

    // Stale: every answer is the old page at once; the one regeneration is held meanwhile.
    site.version = 'v2';
    await a.cache.revalidatePath(path);
    await propagate();
    clock.advance(1000);
    site.gate = deferred();
    const stale = await Promise.all(
      Array.from({ length: 50 }, (_, i) => fetchPage(`${i % 2 ? urlB : urlA}${path}`)),
    );
    expect(new Set(stale.map((r) => `${r.status} ${r.cache} ${r.body}`))).toEqual(
      new Set([`200 STALE ${v1}`]),
    );
    await sleep(50); // the losing instance's lease attempts are done by now
    site.gate.resolve();
    site.gate = undefined;
    await Promise.all([a.cache.idle(), b.cache.idle()]);
    expect(renders(path)).toBe(2);

    const after = await Promise.all([fetchPage(`${urlA}${path}`), fetchPage(`${urlB}${path}`)]);
    for (const res of after) {
      expect(res.cache).toBe('HIT');
      expect(res.body).toMatch(/^<p>\/cold v2 by [AB]<\/p>$/);
    }
    expect(renders(path)).toBe(2);
    expectNoTrouble(a, b);
  });

  test('tag clocks on different shards: revalidateTag through A makes the page STALE on B, expire makes it MISS', async () => {
    const { a, b, clock, site, redisKey, namespace } = await twoInstances();
    const tags = (
      await spreadOverMasters(
        5,
        (i) => `topic-${i}`,
        (tag) => redisKey(`isr-tag-clock:stale:tag:${tag}`),
      )
    ).map(({ name }) => name);
    const path = '/tagged';
    site.tags[path] = tags;

    await expectVisit(a, path, 'MISS', '<p>/tagged v1 by A</p>');
    await a.cache.idle();
    // A HIT needs every clock read (MGET over several slots) to succeed.
    await expectVisit(b, path, 'HIT', '<p>/tagged v1 by A</p>');

    let version = 1;
    for (const tag of tags) {
      const old = `<p>/tagged v${version} by ${version === 1 ? 'A' : 'B'}</p>`;
      version += 1;
      site.version = `v${version}`;
      await a.cache.revalidateTag(tag);
      await propagate();
      clock.advance(1000);
      await expectVisit(b, path, 'STALE', old);
      await b.cache.idle();
      await expectVisit(b, path, 'HIT', `<p>/tagged v${version} by B</p>`);
      await propagate();
      await expectVisit(a, path, 'HIT', `<p>/tagged v${version} by B</p>`);
    }

    // The clocks were written where their slots live: on all three masters.
    const clocks = await cluster.keysByNode(`${namespace}::isr-tag-clock:stale:tag:*`);
    for (const tag of tags) {
      const port = await cluster.nodeOf(redisKey(`isr-tag-clock:stale:tag:${tag}`));
      expect(clocks.get(port)).toContain(redisKey(`isr-tag-clock:stale:tag:${tag}`));
    }
    expect([...clocks.values()].filter((keys) => keys.length > 0).length).toBe(3);

    site.version = 'final';
    await a.cache.revalidateTag(tags[3], { mode: 'expire' });
    await propagate();
    clock.advance(1000);
    await expectVisit(b, path, 'MISS', '<p>/tagged final by B</p>');
    expectNoTrouble(a, b);
  });

  test('L1 stays coherent through pub/sub on the cluster: after A revalidates, B does not serve its old copy', async () => {
    const { a, b, clock, site, redisKey, namespace } = await twoInstances();
    const path = '/l1';

    await expectVisit(a, path, 'MISS', '<p>/l1 v1 by A</p>');
    await a.cache.idle();
    await expectVisit(b, path, 'HIT', '<p>/l1 v1 by A</p>'); // starts B's events
    // Both instances are subscribed to the namespace's channel (somewhere on the cluster).
    const channel = `${namespace}:isr-events`;
    await waitFor(
      'both instances subscribed to the channel',
      async () => {
        let total = 0;
        for (const port of cluster.ports) {
          const out = await cluster.cli(port, 'PUBSUB', 'NUMSUB', channel);
          total += Number(out[1] ?? 0);
        }
        return total >= 2;
      },
      5000,
    );

    // B keeps its own copy: once the shared entry is gone behind its back, B still HITs.
    // (Until B's events are proven live it keeps no copy: then B renders the page again.)
    let old = '';
    await waitFor(
      'B serving from its own copy (L1)',
      async () => {
        const res = await request(b.app).get(path);
        if (res.headers['x-isr-cache'] === 'HIT') {
          await cluster.cli(await cluster.nodeOf(redisKey(path)), 'DEL', redisKey(path));
          const local = await request(b.app).get(path);
          if (local.headers['x-isr-cache'] === 'HIT' && local.text === res.text) {
            old = res.text;
            return true;
          }
        }
        await b.cache.idle();
        return false;
      },
      4000,
    );
    expect(old).toMatch(/^<p>\/l1 v1 by [AB]<\/p>$/);

    site.version = 'v2';
    await a.cache.revalidatePath(path);
    await propagate(); // well within the 100 ms the events may take
    clock.advance(1000);
    const res = await request(b.app).get(path);
    expect(`${res.headers['x-isr-cache']} ${res.text}`).not.toBe(`HIT ${old}`);
    expect([res.headers['x-isr-cache'], res.text]).toEqual(['STALE', old]);
    await b.cache.idle();
    await expectVisit(b, path, 'HIT', '<p>/l1 v2 by B</p>');

    site.version = 'v3';
    await a.cache.revalidatePath(path, { mode: 'expire' });
    await propagate();
    clock.advance(1000);
    await expectVisit(b, path, 'MISS', '<p>/l1 v3 by B</p>');
    expectNoTrouble(a, b);
  });

  test('leases live on the cluster: taken while a render runs, removed after it', async () => {
    const { a, b, clock, site, renders, namespace } = await twoInstances();
    const path = '/held';
    const leasePattern = `*isr-lease:*`;
    const leases = async () => [...(await cluster.keysByNode(leasePattern)).values()].flat();
    expect(await leases()).toEqual([]);

    site.gate = deferred();
    const onA = request(a.app)
      .get(path)
      .then((res) => res);
    await waitFor('renders(path) === 1', async () => renders(path) === 1, 5000);
    // The lease key exists, once, on the master owning its slot.
    const leaseKey = `${namespace}:isr-lease:${path}`;
    expect(await leases()).toEqual([leaseKey]);
    const owner = await cluster.nodeOf(leaseKey);
    expect((await cluster.keysByNode(leasePattern)).get(owner)).toEqual([leaseKey]);

    // B sees the lease and waits for A's page instead of rendering.
    const onB = request(b.app)
      .get(path)
      .then((res) => res);
    await sleep(50);
    expect(renders(path)).toBe(1);
    site.gate.resolve();
    site.gate = undefined;
    const [resA, resB] = await Promise.all([onA, onB]);
    expect([resA.headers['x-isr-cache'], resA.text]).toEqual(['MISS', '<p>/held v1 by A</p>']);
    expect([resB.headers['x-isr-cache'], resB.text]).toEqual(['MISS', '<p>/held v1 by A</p>']);
    expect(renders(path)).toBe(1);
    await Promise.all([a.cache.idle(), b.cache.idle()]);

    // Released (compare-and-delete), not left to expire: the lease lasts 5 s.
    await waitFor('(await leases()).length === 0', async () => (await leases()).length === 0, 1000);

    // A regeneration takes a lease too, and gives it back.
    await a.cache.revalidatePath(path);
    await propagate();
    clock.advance(1000);
    site.gate = deferred();
    await expectVisit(b, path, 'STALE', '<p>/held v1 by A</p>');
    await waitFor('renders(path) === 2', async () => renders(path) === 2, 5000);
    expect(await leases()).toEqual([leaseKey]);
    site.gate.resolve();
    site.gate = undefined;
    await b.cache.idle();
    await waitFor('(await leases()).length === 0', async () => (await leases()).length === 0, 1000);
    expectNoTrouble(a, b);
  });

  test('regenerate through B re-renders the pages only A served, from the tag index on every shard; B lists them', async () => {
    const { a, b, site, namespace, renders } = await twoInstances();
    const pages = await spreadOverMasters(
      3,
      (i) => `/shelf-${i}/book`,
      (path) => `${namespace}::isr-page-index:layout:${path.slice(0, path.lastIndexOf('/'))}`,
    );
    for (const { name } of pages) {
      site.tags[name] = ['books'];
      await expectVisit(a, name, 'MISS', `<p>${name} v1 by A</p>`);
    }
    await a.cache.idle();
    // B has served a page of its own: it knows its app (README, `app`).
    await expectVisit(b, '/elsewhere', 'MISS', '<p>/elsewhere v1 by B</p>');

    site.version = 'v2';
    const answer = await request(b.app)
      .post('/api/revalidate')
      .set('Authorization', `Bearer ${SECRET}`)
      .send({ tag: 'books', mode: 'regenerate' });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ regenerated: 3, failed: 0, pending: 0 });
    for (const { name } of pages) {
      expect(renders(name)).toBe(2);
      await expectVisit(b, name, 'HIT', `<p>${name} v2 by B</p>`);
    }
    // Each listing reads one folder's set, on its own shard.
    for (const { name } of pages) {
      const folder = name.slice(0, name.lastIndexOf('/') + 1);
      const { entries } = await b.cache.entries({ prefix: folder });
      expect(entries.map((entry) => entry.url)).toEqual([name]);
    }
    expectNoTrouble(a, b);
  });

  test('the webhook on A refreshes the page on B', async () => {
    const { a, b, clock, site } = await twoInstances();
    site.tags['/news'] = ['news'];

    await expectVisit(a, '/news', 'MISS', '<p>/news v1 by A</p>');
    await expectVisit(a, '/about', 'MISS', '<p>/about v1 by A</p>');
    await a.cache.idle();
    await expectVisit(b, '/news', 'HIT', '<p>/news v1 by A</p>');
    await expectVisit(b, '/about', 'HIT', '<p>/about v1 by A</p>');

    site.version = 'v2';
    const byPath = await request(a.app)
      .post('/api/revalidate')
      .set('Authorization', `Bearer ${SECRET}`)
      .send({ path: '/about' });
    expect(byPath.status).toBe(200);
    expect(byPath.body).toMatchObject({ revalidated: true, paths: ['/about'] });
    await propagate();
    clock.advance(1000);
    await expectVisit(b, '/about', 'STALE', '<p>/about v1 by A</p>');
    await b.cache.idle();
    await expectVisit(b, '/about', 'HIT', '<p>/about v2 by B</p>');
    await expectVisit(b, '/news', 'HIT', '<p>/news v1 by A</p>');

    site.version = 'v3';
    const byTag = await request(a.app)
      .post('/api/revalidate')
      .set('Authorization', `Bearer ${SECRET}`)
      .send({ tag: 'news', mode: 'expire' });
    expect(byTag.status).toBe(200);
    await propagate();
    clock.advance(1000);
    await expectVisit(b, '/news', 'MISS', '<p>/news v3 by B</p>');
    expectNoTrouble(a, b);
  });
});
