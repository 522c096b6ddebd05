/**
 * Replay builds an entry's header list once per state, age and cache settings and reuses it
 * for every answer in between (a herd of waiters, a run of hits). What changes any of these
 * must never reuse a list built for another: each answer's headers are checked here on real
 * responses, alternating the inputs within the same second.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CacheEntry } from '../lib';
import { type CacheState, defaultCacheControl, type ReplaySettings, replay } from '../lib/replay';
import { rawRequest } from './helpers/raw-http';

const GENERATED_AT = Date.UTC(2026, 0, 1);

function entry(): CacheEntry {
  return {
    status: 200,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    body: Buffer.from('<h1>page</h1>'),
    etag: '"page"',
    generatedAt: GENERATED_AT,
    revalidate: 60,
    tags: ['posts'],
    url: '/page',
    requestHeaders: {},
  };
}

const defaults: ReplaySettings = {
  cacheControl: defaultCacheControl,
  cacheStatus: true,
  cdnTags: 'cache-tag',
};

async function replayed(
  page: CacheEntry,
  state: CacheState,
  secondsLater: number,
  settings: ReplaySettings,
  collapsed = false,
) {
  const listener = (req: IncomingMessage, res: ServerResponse) =>
    replay(req, res, page, state, GENERATED_AT + secondsLater * 1000, settings, collapsed);
  const { headers } = await rawRequest(listener, '/page');
  return {
    age: headers.age,
    state: headers['x-isr-cache'],
    cacheStatus: headers['cache-status'],
    cacheControl: headers['cache-control'],
    cacheTag: headers['cache-tag'],
    surrogateKey: headers['surrogate-key'],
  };
}

describe('replayed headers, reused only for the same state, age and settings', () => {
  test('HIT and STALE of one entry in the same second each get their own headers', async () => {
    const page = entry();
    const hit = await replayed(page, 'HIT', 5, defaults);
    const stale = await replayed(page, 'STALE', 5, defaults);
    const hitAgain = await replayed(page, 'HIT', 5, defaults);
    expect(hit).toMatchObject({
      state: 'HIT',
      cacheControl: 's-maxage=55, stale-while-revalidate=60',
    });
    expect(stale).toMatchObject({
      state: 'STALE',
      cacheControl: 's-maxage=0, stale-while-revalidate=60',
    });
    expect(hitAgain).toEqual(hit);
  });

  test('a collapsed MISS and a plain MISS in the same second', async () => {
    const page = entry();
    const collapsed = await replayed(page, 'MISS', 0, defaults, true);
    const plain = await replayed(page, 'MISS', 0, defaults, false);
    expect(collapsed.cacheStatus).toBe('express-isr; fwd=uri-miss; stored; collapsed');
    expect(plain.cacheStatus).toBe('express-isr; fwd=uri-miss; stored');
  });

  test('a new second gives a new Age and s-maxage', async () => {
    const page = entry();
    expect(await replayed(page, 'HIT', 1, defaults)).toMatchObject({ age: '1' });
    expect(await replayed(page, 'HIT', 2, defaults)).toMatchObject({
      age: '2',
      cacheControl: 's-maxage=58, stale-while-revalidate=60',
    });
  });

  test('two caches with different settings replaying the same entry object', async () => {
    const page = entry();
    const other: ReplaySettings = {
      cacheControl: undefined,
      cacheStatus: false,
      cdnTags: 'surrogate-key',
    };
    const first = await replayed(page, 'HIT', 3, defaults);
    const second = await replayed(page, 'HIT', 3, other);
    expect(first).toMatchObject({ cacheTag: 'posts', surrogateKey: undefined });
    expect(first.cacheStatus).toBeDefined();
    expect(second).toMatchObject({
      cacheTag: undefined,
      surrogateKey: 'posts',
      cacheStatus: undefined,
      cacheControl: undefined,
    });
  });
});
