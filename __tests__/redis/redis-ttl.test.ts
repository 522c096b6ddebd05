/**
 * README, "Running many instances" (a Redis with `maxmemory`): every key the cache writes to Redis has a TTL, so a Redis with `maxmemory` and a
 * `volatile-*` policy can evict any of them, and nothing the cache wrote outlives its use.
 * Every kind of write is made on a redis-server of this file's own (a MISS, a regeneration,
 * a Vary'd page, revalidatePath and revalidateTag in every mode, prerender, an unsafe POST,
 * the `version` pointers, a lease while a render is in flight); then every key is SCANned:
 * each has a TTL, a page's is its revalidate + maxStale + staleIfError, the tag clocks a
 * page carries outlive it, and each set of the shared tag index lives as long as its pages.
 */
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import { isr } from '../../lib';
import { implicitTags, userTag } from '../../lib/request/cache-key';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { listen } from '../helpers/http';
import { RedisServer } from '../helpers/instances';
import { uniqueNamespace } from '../helpers/redis';
import { fakeClock, sleep } from '../helpers/time';

const cleanups = cleanupsAfterEach();

const REVALIDATE = 60;
const MAX_STALE = 600;
const STALE_IF_ERROR = 300;
const PAGE_LIFE_MS = (REVALIDATE + MAX_STALE + STALE_IF_ERROR) * 1000;
const YEAR_MS = 365 * 24 * 3600 * 1000;
/** Real time the test may take between a write and the SCAN that reads its TTL. */
const SLACK_MS = 30_000;

function newClient(url: string) {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  return client;
}
type Client = ReturnType<typeof newClient>;

async function keysMatching(client: Client, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const batch of client.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    keys.push(...batch);
  }
  return keys;
}

async function pttl(client: Client, key: string): Promise<number> {
  return Number(await client.sendCommand(['PTTL', key]));
}

/** What Keyv stored at `key`: its `value`, or undefined for keys that are not Keyv's. */
async function keyvValue(
  client: Client,
  key: string,
): Promise<Record<string, unknown> | undefined> {
  const raw = await client.sendCommand<string | null>(['GET', key]);
  if (raw === null) return undefined;
  try {
    const parsed = JSON.parse(raw) as { value?: unknown };
    return typeof parsed.value === 'object' && parsed.value !== null
      ? (parsed.value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** One instance: Express + isr() on a Keyv of its own over `redisUrl`. */
async function startInstance(redisUrl: string, ns: string, now: () => number, version: string) {
  const keyv = new Keyv({ store: new KeyvRedis(redisUrl), namespace: ns, useKeyPrefix: false });
  const recorder = errorRecorder();
  const slow = deferred();
  const app = express();
  const cache = isr({
    store: keyv,
    now,
    app,
    revalidate: REVALIDATE,
    maxStale: MAX_STALE,
    staleIfError: STALE_IF_ERROR,
    version,
    // Not the default 500 ms: a busy machine must not turn a write into an outage here.
    storeTimeout: 5000,
    onError: recorder.onError,
    logger: recorder.logger,
  });
  let renders = 0;
  app.use(cache);
  app.get('/p/:id', (req, res) => {
    renders += 1;
    res.isr({ tags: [`t-${req.params.id}`] });
    res.type('html').send(`<p>page ${req.params.id} ${version} render ${renders}</p>`);
  });
  app.post('/p/:id', (_req, res) => {
    res.send('updated');
  });
  app.get('/forever', (_req, res) => {
    res.isr({ revalidate: false, tags: ['forever'] });
    res.type('html').send('<p>forever</p>');
  });
  app.get('/short', (_req, res) => {
    res.isr({ maxStale: 30, tags: ['short'] });
    res.type('html').send('<p>short</p>');
  });
  app.get('/vary', (req, res) => {
    res.vary('Accept-Language');
    res.isr({ tags: ['vary'] });
    res.type('html').send(`<p>${req.get('accept-language') ?? 'none'}</p>`);
  });
  app.get('/slow', async (_req, res) => {
    await slow.promise;
    res.type('html').send('<p>slow</p>');
  });
  const server = await listen(app);
  cleanups.push(async () => {
    slow.resolve();
    await cache.idle();
    await cache.close();
    await server.close();
    await keyv.disconnect();
  });
  const request = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(server.url(path), init);
    return { state: res.headers.get('x-isr-cache') ?? '', body: await res.text() };
  };
  return { cache, request, slow, errors: recorder.errors };
}

test('every key the cache writes to Redis has a TTL, pages their useful life, clocks longer', async () => {
  const server = await RedisServer.start();
  cleanups.push(() => server.stop());
  const admin = newClient(server.url);
  await admin.connect();
  cleanups.push(() => admin.destroy());
  const ns = uniqueNamespace('ttl');
  const clock = fakeClock();
  const v1 = await startInstance(server.url, ns, clock.now, 'v1');
  const { request, cache } = v1;

  // A MISS stored, a page with no window, one with its own maxStale, a Vary'd page (two variants).
  for (const id of [1, 2, 3, 4]) expect((await request(`/p/${id}`)).state).toBe('MISS');
  expect((await request('/forever')).state).toBe('MISS');
  expect((await request('/short')).state).toBe('MISS');
  for (const lang of ['en', 'fr']) {
    const reply = await request('/vary', { headers: { 'accept-language': lang } });
    expect(reply.state).toBe('MISS');
  }
  await cache.idle();
  expect((await request('/p/1')).state).toBe('HIT');

  // A regeneration: past the window, STALE, rendered again in the background.
  clock.advanceSeconds(REVALIDATE + 1);
  expect((await request('/p/1')).state).toBe('STALE');
  await cache.idle();
  expect((await request('/p/1')).state).toBe('HIT');

  // On-demand invalidation in every mode, by path and by tag, and of tags no page carries.
  clock.advanceSeconds(1);
  await cache.revalidatePath('/p/2', { mode: 'stale' });
  await cache.revalidateTag('t-3', { mode: 'expire' });
  await cache.revalidatePath('/p/4', { mode: 'expire' });
  await cache.revalidateTag('t-1', { mode: 'regenerate' });
  await cache.revalidateTag('vary', { mode: 'stale' });
  await cache.revalidateTag('nobody-has-it', { mode: 'expire' });
  await cache.revalidatePath('/nowhere', { mode: 'stale' });
  clock.advanceSeconds(1);
  expect((await request('/p/2')).state).toBe('STALE');
  expect((await request('/p/3')).state).toBe('MISS');
  expect((await request('/p/4')).state).toBe('MISS');
  expect((await request('/vary', { headers: { 'accept-language': 'en' } })).state).toBe('STALE');
  await cache.idle();

  // Prerender, and an unsafe POST that invalidates the page at its path.
  const prerendered = await cache.prerender(['/p/5', '/p/6']);
  expect(prerendered.map((r) => r.outcome)).toEqual(['stored', 'stored']);
  clock.advanceSeconds(1);
  const posted = await request('/p/5', { method: 'POST' });
  expect(posted.body).toBe('updated');
  await cache.idle();
  clock.advanceSeconds(1);
  expect((await request('/p/5')).state).toBe('STALE');
  await cache.idle();

  // A new deploy: version v2 finds v1's page through the pointer, serves it STALE and
  // stores its own (and the pointer again).
  const v2 = await startInstance(server.url, ns, clock.now, 'v2');
  expect((await v2.request('/p/6')).state).toBe('STALE');
  await v2.cache.idle();
  expect((await v2.request('/p/6')).state).toBe('HIT');

  // A lease while a cold render is in flight: it has a TTL too (and is gone afterwards).
  const slow = request('/slow');
  let leases: string[] = [];
  for (let i = 0; i < 200 && leases.length === 0; i += 1) {
    leases = await keysMatching(admin, `${ns}:isr-lease:*`);
    if (leases.length === 0) await sleep(10);
  }
  expect(leases).toHaveLength(1);
  const leaseTtl = await pttl(admin, leases[0]);
  expect(leaseTtl).toBeGreaterThan(0);
  expect(leaseTtl).toBeLessThanOrEqual(5000);
  v1.slow.resolve();
  expect((await slow).state).toBe('MISS');
  await cache.idle();
  expect(await keysMatching(admin, `${ns}:isr-lease:*`)).toEqual([]);

  // Every key: under the namespace, and nothing anywhere else.
  const all = await keysMatching(admin, '*');
  expect(all.filter((key) => !key.startsWith(`${ns}:`))).toEqual([]);
  const ttls = new Map<string, number>();
  for (const key of all) ttls.set(key, await pttl(admin, key));
  const withoutTtl = [...ttls].filter(([, ttl]) => !(ttl > 0));
  expect(withoutTtl).toEqual([]);

  // Pages (and the Vary records and version pointers stored beside them): their useful life.
  const kinds = { pages: 0, vary: 0, pointers: 0, clocks: 0, indexes: 0 };
  const pageTtls: { key: string; ttl: number; clockKeys: string[] }[] = [];
  const indexKeys: string[] = [];
  for (const key of all) {
    if (key.includes('::isr-tag-clock:')) {
      kinds.clocks += 1;
      continue;
    }
    if (key.includes('::isr-page-index:') || key.includes('::isr-query-index:')) {
      kinds.indexes += 1;
      indexKeys.push(key);
      continue;
    }
    const value = await keyvValue(admin, key);
    expect({ key, stored: value !== undefined }).toEqual({ key, stored: true });
    const ttl = ttls.get(key) as number;
    if (value === undefined) continue;
    // A page's own life; its Vary record's and its version pointer's: the last save's.
    const expected = key.endsWith(':/forever')
      ? YEAR_MS
      : key.endsWith(':/short')
        ? (REVALIDATE + 30 + STALE_IF_ERROR) * 1000
        : PAGE_LIFE_MS;
    if ('vary' in value) kinds.vary += 1;
    else if ('latest' in value) kinds.pointers += 1;
    else kinds.pages += 1;
    expect({ key, ok: ttl > expected - SLACK_MS && ttl <= expected }).toEqual({ key, ok: true });
    if ('body' in value) {
      const url = String(value.url);
      const path = url.split('?')[0];
      const tags = [...implicitTags(path), ...(value.tags as string[]).map(userTag)];
      const clockKeys = tags.flatMap((tag) => [
        `${ns}::isr-tag-clock:stale:${tag}`,
        `${ns}::isr-tag-clock:expire:${tag}`,
      ]);
      pageTtls.push({ key, ttl, clockKeys });
    }
  }
  expect(kinds.pages).toBeGreaterThanOrEqual(10);
  expect(kinds.vary).toBeGreaterThanOrEqual(1);
  expect(kinds.pointers).toBeGreaterThanOrEqual(6);

  // The /p/* pages live revalidate + maxStale + staleIfError: 960 s here.
  const page1 = pageTtls.find((p) => p.key === `${ns}::v:v1:/p/1`);
  expect(page1?.ttl).toBeGreaterThan(PAGE_LIFE_MS - SLACK_MS);
  expect(page1?.ttl).toBeLessThanOrEqual(960_000);

  // Every clock a stored page is judged by exists, and lives at least as long as the page.
  const shortLived: string[] = [];
  for (const { key, ttl, clockKeys } of pageTtls) {
    for (const clockKey of clockKeys) {
      const clockTtl = ttls.get(clockKey);
      if (clockTtl === undefined || clockTtl < ttl)
        shortLived.push(`${clockKey} (${clockTtl ?? 'missing'} ms) < ${key} (${ttl} ms)`);
    }
  }
  expect(shortLived).toEqual([]);

  // The shared tag index (which pages carry a tag, for `regenerate` on any instance): each
  // tag's set lives as long as the longest-lived page in it and a minute more, no longer.
  const indexShort: string[] = [];
  for (const key of indexKeys) {
    const ttl = ttls.get(key) as number;
    const members = await admin.sendCommand<string[]>(['ZRANGE', key, '0', '-1']);
    const pages = members.map((member) => (JSON.parse(member) as string[]).at(-1) as string);
    const lives = pages.map((page) => ttls.get(`${ns}::${page}`) ?? 0);
    if (!(ttl >= Math.max(...lives)) || ttl > Math.max(...lives) + 60_000 + SLACK_MS)
      indexShort.push(`${key} (${ttl} ms) for ${pages.join(' ')} (${lives.join(' ')} ms)`);
  }
  expect(indexShort).toEqual([]);
  expect(indexKeys).toContain(`${ns}::isr-page-index:v:v1:tag:t-1`);
  expect(ttls.get(`${ns}::isr-page-index:v:v1:tag:forever`)).toBeGreaterThan(YEAR_MS - SLACK_MS);

  // A clock no page holds lives only as long as a render that started before it may take.
  const orphan = ttls.get(`${ns}::isr-tag-clock:expire:tag:nobody-has-it`);
  expect(orphan).toBeGreaterThan(0);
  expect(orphan).toBeLessThan(PAGE_LIFE_MS);
  expect(v1.errors).toEqual([]);
  expect(v2.errors).toEqual([]);
  console.log(
    `[redis-ttl] ${all.length} keys, every one with a TTL: ${kinds.pages} pages, ` +
      `${kinds.vary} Vary records, ${kinds.pointers} version pointers, ${kinds.clocks} tag clocks, ` +
      `${kinds.indexes} tag index sets; ` +
      `/p/1 ${Math.round((page1?.ttl ?? 0) / 1000)} s (expected ${PAGE_LIFE_MS / 1000} s), ` +
      `lease ${leaseTtl} ms, a clock no page holds ${Math.round((orphan ?? 0) / 1000)} s`,
  );
}, 60_000);
