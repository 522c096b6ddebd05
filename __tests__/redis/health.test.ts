/**
 * `cache.health()` and `GET /health` in one process (the fleet over Redis is in
 * fleet-health.test.ts): the memory store and a Keyv store other than Redis report this
 * process's renders in flight; the `instanceId` option names the instance and the pages it
 * renders (`renderedBy`), and an entry stored before that field existed shows none.
 */
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrOptions, isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { deferred } from '../helpers/deferred';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';

const SECRET = 'a-webhook-secret-long-enough-1234';
const cleanups = cleanupsAfterEach();

/** `/slow` waits for `gate`; every other path answers at once. */
function setup(options: IsrOptions = {}) {
  const cache = isr({ instanceId: 'web-1', ...options });
  cleanups.push(() => cache.close());
  const gate = deferred();
  const app = express();
  app.use(cache);
  app.get('/slow', async (_req, res) => {
    await gate.promise;
    res.send('<p>slow</p>');
  });
  app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
  app.get('/{*any}', (req, res) => {
    res.send(`<p>${req.path}</p>`);
  });
  cleanups.push(() => gate.resolve());
  return { cache, app, gate };
}

test('memory store: GET /health answers 200 with the store, no breaker, no L1, and this process in flight', async () => {
  const { cache, app, gate } = setup();
  const server = app.listen(0, '127.0.0.1');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const slow = request(server).get('/slow');
  const pending = slow.then((r) => r);
  pending.catch(() => {});

  let report = await cache.health();
  for (let i = 0; i < 50 && report.inFlight.renders.length === 0; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    report = await cache.health();
  }
  expect(report).toEqual({
    status: 'ok',
    instance: 'web-1',
    store: { kind: 'memory', reachable: true, latencyMs: expect.any(Number) },
    pubsub: null,
    breaker: null,
    l1: { enabled: false },
    inFlight: {
      scope: 'process',
      renders: [{ url: '/slow', key: '/slow', instance: 'web-1', since: expect.any(String) }],
      truncated: false,
    },
  });

  const answer = await request(server)
    .get('/api/revalidate/health')
    .set('authorization', `Bearer ${SECRET}`);
  expect(answer.status).toBe(200);
  expect(answer.headers).toMatchObject({ 'cache-control': 'no-store' });
  expect(answer.body.inFlight.renders).toHaveLength(1);
  expect((await request(server).get('/api/revalidate/health')).status).toBe(401);

  gate.resolve();
  expect((await pending).headers['x-isr-cache']).toBe('MISS');
  await cache.idle();
  expect((await cache.health()).inFlight.renders).toEqual([]);
  // The page carries the instance that rendered it.
  expect(await cache.entry('/slow')).toMatchObject({ url: '/slow', renderedBy: 'web-1' });
});

test('a token in a page URL is redacted in the renders in flight, entry() and entries()', async () => {
  const { cache, app, gate } = setup();
  const server = app.listen(0, '127.0.0.1');
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  const pending = request(server)
    .get('/slow?token=TOPSECRET123')
    .then((r) => r);
  pending.catch(() => {});
  let report = await cache.health();
  for (let i = 0; i < 50 && report.inFlight.renders.length === 0; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    report = await cache.health();
  }
  expect(report.inFlight.renders).toHaveLength(1);
  expect(JSON.stringify(report)).not.toContain('TOPSECRET123');
  expect(report.inFlight.renders[0].url).toBe('/slow?token=***');

  gate.resolve();
  expect((await pending).headers['x-isr-cache']).toBe('MISS');
  await cache.idle();
  const listed = await cache.entries({ prefix: '/slow' });
  expect(listed.entries.map((entry) => entry.url)).toEqual(['/slow?token=***']);
  expect(JSON.stringify(listed)).not.toContain('TOPSECRET123');
  const answer = await request(server)
    .get('/api/revalidate/entries?prefix=/slow')
    .set('authorization', `Bearer ${SECRET}`);
  expect(answer.status).toBe(200);
  expect(answer.text).not.toContain('TOPSECRET123');
});

test('GET /health?secret=… behind the cache is not rendered for the store: health runs once, the secret stays out', async () => {
  const { cache, app } = setup();
  let calls = 0;
  const health = cache.health;
  cache.health = () => {
    calls += 1;
    return health();
  };
  const answer = await request(app).get(`/api/revalidate/health?secret=${SECRET}`);
  expect(answer.status).toBe(200);
  expect(calls).toBe(1);
  expect(answer.headers['x-isr-cache']).toBe('BYPASS');
  expect(answer.headers['cache-status']).toContain('URL carries the webhook secret');
  expect(answer.headers['cache-status']).not.toContain(SECRET);
  // A query without the secret is cached as usual.
  expect((await request(app).get('/page?q=1')).headers['x-isr-cache']).toBe('MISS');
});

test('the default instanceId is host:pid, and a bad one is a TypeError naming the option', () => {
  const os = require('node:os') as typeof import('node:os');
  for (const bad of ['', 'x'.repeat(201), 42, null]) {
    expect(() => isr({ instanceId: bad as string })).toThrow(
      /^\[express-isr\] instanceId must be a non-empty string of at most 200 characters, got /,
    );
  }
  expect(() => isr({ instanceId: 'x'.repeat(200) })).not.toThrow();
  return (async () => {
    const cache = isr();
    cleanups.push(() => cache.close());
    expect((await cache.health()).instance).toBe(`${os.hostname()}:${process.pid}`);
  })();
});

test('a Keyv store other than Redis: kind keyv, a breaker, this process in flight; an entry stored without renderedBy shows none', async () => {
  const keyv = new Keyv();
  const { cache, app } = setup({ store: keyv, instanceId: 'worker-7' });
  await request(app).get('/about').expect(200);
  await cache.idle();
  expect(await cache.entry('/about')).toMatchObject({ renderedBy: 'worker-7' });
  const report = await cache.health();
  expect(report).toMatchObject({
    status: 'ok',
    instance: 'worker-7',
    store: { kind: 'keyv', reachable: true },
    pubsub: null,
    breaker: { state: 'closed', failures: 0 },
    l1: { enabled: false },
    inFlight: { scope: 'process', renders: [], truncated: false },
  });

  // As a page stored by a version before `renderedBy` existed.
  const raw = (await keyv.get('/about')) as Record<string, unknown>;
  delete raw.renderedBy;
  await keyv.set('/about', raw);
  const old = await cache.entry('/about');
  expect(old).toMatchObject({ url: '/about' });
  expect(old).not.toHaveProperty('renderedBy');
  const answer = await request(app)
    .get('/api/revalidate/entry?path=/about')
    .set('authorization', `Bearer ${SECRET}`);
  expect(answer.status).toBe(200);
  expect(answer.body).not.toHaveProperty('renderedBy');
});

test('Redis leases carry who holds them; a lease in the old format is listed by its key, and release still compares', async () => {
  const namespace = uniqueNamespace('health-leases');
  const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace, useKeyPrefix: false });
  const raw = createClient({ url: REDIS_URL });
  await raw.connect();
  cleanups.push(async () => {
    for await (const keys of raw.scanIterator({ MATCH: `${namespace}:*` })) {
      if (keys.length > 0) await raw.del(keys);
    }
    await keyv.clear();
    await keyv.disconnect();
    raw.destroy();
  });
  const { cache, app, gate } = setup({ store: keyv, instanceId: 'web-2', l1: false });
  const pending = request(app)
    .get('/slow')
    .then((r) => r);
  const leaseKey = `${namespace}:isr-lease:/slow`;
  let value: string | null = null;
  for (let i = 0; i < 100 && value === null; i += 1) {
    value = await raw.get(leaseKey);
    if (value === null) await new Promise((resolve) => setTimeout(resolve, 10));
  }
  expect(JSON.parse(value ?? 'null')).toEqual({
    token: expect.stringMatching(/^[0-9a-f-]{36}$/),
    instance: 'web-2',
    since: expect.any(Number),
    url: '/slow',
  });
  // A lease taken by an older version held a bare token (a JSON string).
  await raw.set(`${namespace}:isr-lease:/older`, JSON.stringify('some-token'), { PX: 60_000 });
  const report = await cache.health();
  expect(report.inFlight.scope).toBe('fleet');
  expect(report.inFlight.renders).toEqual(
    expect.arrayContaining([
      { url: '/slow', key: '/slow', instance: 'web-2', since: expect.any(String) },
      { url: '/older', key: '/older', instance: 'unknown' },
    ]),
  );
  expect(report.inFlight.renders).toHaveLength(2);

  // Another holder's lease (its value changed) is not deleted by our release.
  await raw.set(
    leaseKey,
    JSON.stringify({ token: 'theirs', instance: 'x', since: 1, url: '/slow' }),
    {
      PX: 60_000,
    },
  );
  gate.resolve();
  expect((await pending).headers['x-isr-cache']).toBe('MISS');
  await cache.idle();
  expect(JSON.parse((await raw.get(leaseKey)) ?? 'null')).toMatchObject({ token: 'theirs' });
});
