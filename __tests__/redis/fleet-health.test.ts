/**
 * Seeing the whole fleet (README, "Seeing the fleet"): which instance rendered a page
 * (`renderedBy` in `GET /entry`), the renders in flight on every instance (their Redis leases)
 * and `GET /health` behind the router's secret — asked of one process about work done by
 * another. Real processes (`fixtures/instance.ts`) sharing a real Redis, a namespace each.
 */
import { Instance, RedisServer, stopEverything } from '../helpers/instances';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { sleep } from '../helpers/time';

const SECRET = 'a-secret-long-enough-for-the-fleet-test';

afterEach(() => stopEverything());

interface Health {
  status: string;
  instance: string;
  store: { kind: string; reachable: boolean; latencyMs?: number; error?: string };
  pubsub: { connected: boolean } | null;
  breaker: { state: string; failures: number; lastFailure?: { message: string } } | null;
  l1: { enabled: boolean; serving?: boolean; size?: number; entries?: number; limit?: number };
  inFlight: {
    scope: string;
    renders: { url: string; key: string; instance: string; since?: string }[];
    truncated: boolean;
  };
}

/** `GET /api/revalidate<path>` on an instance, bounded: a hang fails the test. */
async function ask(instance: Instance, path: string, secret: string | null = SECRET) {
  const response = await fetch(`http://127.0.0.1:${instance.port}/api/revalidate${path}`, {
    headers: secret === null ? {} : { authorization: `Bearer ${secret}` },
    signal: AbortSignal.timeout(5000),
  });
  return { status: response.status, headers: response.headers, json: await response.json() };
}

async function healthOf(instance: Instance, query = '') {
  const answer = await ask(instance, `/health${query}`);
  return { ...answer, json: answer.json as Health };
}

/** Asks again until `check` holds (at most `tries` times, 100 ms apart). */
async function until<T>(read: () => Promise<T>, check: (value: T) => boolean, tries = 50) {
  let value = await read();
  for (let i = 1; i < tries && !check(value); i += 1) {
    await sleep(100);
    value = await read();
  }
  return value;
}

test('a page rendered by B shows B as renderedBy when A is asked', async () => {
  const namespace = uniqueNamespace('fleet-rendered-by');
  const options = { redisUrl: REDIS_URL, namespace, l1: true, secret: SECRET };
  const [a, b] = await Promise.all([Instance.start('A', options), Instance.start('B', options)]);
  const idA = (await healthOf(a)).json.instance;
  const idB = (await healthOf(b)).json.instance;
  expect(idA).not.toBe(idB);
  expect(idB).toMatch(/:\d+$/); // `${hostname}:${pid}` by default

  expect((await b.get('/page/one')).state).toBe('MISS');
  const entry = await until(
    () => ask(a, '/entry?path=/page/one'),
    (answer) => answer.status === 200,
  );
  expect(entry.status).toBe(200);
  expect(entry.json).toMatchObject({ url: '/page/one', renderedBy: idB });
  expect(a.reportedErrors).toEqual([]);
  expect(b.reportedErrors).toEqual([]);
});

test('a slow render in progress on B is listed in flight when A is asked, and gone once done', async () => {
  const namespace = uniqueNamespace('fleet-in-flight');
  const base = { redisUrl: REDIS_URL, namespace, l1: true, secret: SECRET };
  const [a, b] = await Promise.all([
    Instance.start('A', base),
    Instance.start('B', { ...base, renderMs: 2500 }),
  ]);
  const idB = (await healthOf(b)).json.instance;
  const slow = b.get('/page/slow', 10_000);

  const during = await until(
    () => healthOf(a),
    (answer) => answer.json.inFlight.renders.length > 0,
  );
  expect(during.status).toBe(200);
  expect(during.json.inFlight.scope).toBe('fleet');
  expect(during.json.inFlight.renders).toEqual([
    { url: '/page/slow', key: '/page/slow', instance: idB, since: expect.any(String) },
  ]);
  expect(Number.isNaN(Date.parse(during.json.inFlight.renders[0].since ?? ''))).toBe(false);

  expect((await slow).state).toBe('MISS');
  const after = await until(
    () => healthOf(a),
    (answer) => answer.json.inFlight.renders.length === 0,
  );
  expect(after.json.inFlight.renders).toEqual([]);
});

test('GET /health: 200 with every field while Redis answers, degraded (503 if strict) within bounds once it is gone', async () => {
  const redis = await RedisServer.start();
  const options = {
    redisUrl: redis.url,
    namespace: uniqueNamespace('fleet-health'),
    l1: true,
    secret: SECRET,
  };
  const [a] = await Promise.all([Instance.start('A', options), Instance.start('B', options)]);
  expect((await a.get('/page/warm')).state).toBe('MISS');

  const healthy = await until(
    () => healthOf(a),
    // The MISS answered before its page was stored: its lease goes once it is.
    (answer) =>
      answer.json.pubsub?.connected === true &&
      answer.json.l1.serving === true &&
      answer.json.inFlight.renders.length === 0,
  );
  expect(healthy.status).toBe(200);
  expect(healthy.headers.get('cache-control')).toBe('no-store');
  expect(healthy.headers.get('content-type')).toMatch(/^application\/json/);
  expect(healthy.json).toEqual({
    status: 'ok',
    instance: expect.stringMatching(/:\d+$/),
    store: { kind: 'redis', reachable: true, latencyMs: expect.any(Number) },
    pubsub: { connected: true },
    breaker: { state: 'closed', failures: 0 },
    l1: {
      enabled: true,
      serving: true,
      size: expect.any(Number),
      entries: expect.any(Number),
      limit: 50 * 1024 * 1024,
    },
    inFlight: { scope: 'fleet', renders: [], truncated: false },
  });
  expect(healthy.json.store.latencyMs).toBeGreaterThanOrEqual(0);

  await redis.stop();
  // A visitor's request fails open (rendered, not stored) and opens the breaker.
  expect((await a.get('/page/during-outage')).status).toBe(200);
  const down = await healthOf(a);
  // The instance still serves (fail open): 200, degraded — 503 only when asked strictly.
  expect(down.status).toBe(200);
  expect(down.headers.get('cache-control')).toBe('no-store');
  expect(down.json.status).toBe('degraded');
  expect((await healthOf(a, '?strict=1')).status).toBe(503);
  expect(down.json.store).toEqual({ kind: 'redis', reachable: false, error: expect.any(String) });
  expect(down.json.pubsub).toEqual({ connected: false });
  expect(['open', 'half-open']).toContain(down.json.breaker?.state);
  expect(down.json.breaker?.failures).toBeGreaterThanOrEqual(1);
  expect(down.json.breaker?.lastFailure?.message).toEqual(expect.any(String));
  expect(down.json.inFlight).toMatchObject({ scope: 'fleet', renders: [], truncated: true });
  expect(down.json.l1).toMatchObject({ enabled: true, serving: false });
});

test('GET /health wants the secret: 401 without it or with a wrong one, 405 for POST', async () => {
  const options = {
    redisUrl: REDIS_URL,
    namespace: uniqueNamespace('fleet-health-auth'),
    l1: false,
    secret: SECRET,
  };
  const a = await Instance.start('A', options);
  const none = await ask(a, '/health', null);
  expect(none.status).toBe(401);
  expect(none.json).toEqual({ error: 'missing or wrong secret' });
  expect((await ask(a, '/health', 'not-the-secret')).status).toBe(401);
  const post = await fetch(`http://127.0.0.1:${a.port}/api/revalidate/health`, {
    method: 'POST',
    headers: { authorization: `Bearer ${SECRET}` },
    signal: AbortSignal.timeout(5000),
  });
  expect(post.status).toBe(405);
  expect(post.headers.get('allow')).toBe('GET');
  // With l1: false there is no pub/sub link and no L1.
  const health = await healthOf(a);
  expect(health.status).toBe(200);
  expect(health.json.pubsub).toBeNull();
  expect(health.json.l1).toEqual({ enabled: false });
});
