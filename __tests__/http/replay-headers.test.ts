/**
 * Replay builds an entry's header list once per state, age and cache settings and reuses it
 * for every answer in between (a herd of waiters, a run of hits). What changes any of these
 * must never reuse a list built for another: each answer's headers are checked here on real
 * responses, alternating the inputs within the same second. And a header that middleware
 * mounted before isr() set on this very response is this request's, never the stored one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type CacheEntry, isr } from '../../lib';
import { type CacheState, defaultCacheControl } from '../../lib/request/cache-control';
import { type ReplaySettings, replay } from '../../lib/request/replay';
import { expressVersions } from '../helpers/express';
import { rawRequest } from '../helpers/http';

const GENERATED_AT = Date.UTC(2026, 0, 1);

function entry(): CacheEntry {
  return {
    status: 200,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    body: Buffer.from('<h1>page</h1>'),
    etag: '"page"',
    generatedAt: GENERATED_AT,
    revalidate: 60,
    maxStale: 86_400,
    staleIfError: 86_400,
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
      cacheControl: 's-maxage=60, stale-while-revalidate=86400, stale-if-error=172800',
    });
    expect(stale).toMatchObject({
      state: 'STALE',
      cacheControl: 's-maxage=0, stale-while-revalidate=86400, stale-if-error=172800',
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

  test('a new second gives a new Age (and the same lifetimes: Age counts the seconds spent)', async () => {
    const page = entry();
    expect(await replayed(page, 'HIT', 1, defaults)).toMatchObject({ age: '1' });
    expect(await replayed(page, 'HIT', 2, defaults)).toMatchObject({
      age: '2',
      cacheControl: 's-maxage=60, stale-while-revalidate=86400, stale-if-error=172800',
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
    expect(first).toMatchObject({
      cacheTag: 'page:/page,layout:/,layout:/page,posts',
      surrogateKey: undefined,
    });
    expect(first.cacheStatus).toBeDefined();
    expect(second).toMatchObject({
      cacheTag: undefined,
      surrogateKey: 'page:/page layout:/ layout:/page posts',
      cacheStatus: undefined,
      cacheControl: undefined,
    });
  });
});

describe.each(expressVersions)(
  'headers set by middleware mounted before isr() (%s)',
  (_name, createApp) => {
    test("are this request's own on a HIT and a 304, not the first request's stored with the page", async () => {
      const cache = isr();
      try {
        const app = createApp();
        let id = 0;
        // A request id, CORS, a per-request nonce: set on every request, before the cache.
        app.use((_req, res, next) => {
          id += 1;
          res.setHeader('x-request-id', `req-${id}`);
          next();
        });
        app.use(cache);
        app.get('/page', (_req, res) => {
          res.set('X-Page', 'from the route');
          res.type('html').send('<h1>page</h1>');
        });
        const miss = await rawRequest(app, '/page');
        expect(miss.headers['x-request-id']).toBe('req-1');
        await cache.idle();

        const hit = await rawRequest(app, '/page');
        expect(hit.headers['x-isr-cache']).toBe('HIT');
        // req-2 went to the render the cache made on the MISS: middleware mounted before
        // isr() runs for that request too, and its value was stored with the page.
        expect(hit.headers['x-request-id']).toBe('req-3');
        expect(hit.headers['x-page']).toBe('from the route'); // the route's stay stored
        expect(hit.headers['content-type']).toMatch(/^text\/html/);

        const notModified = await rawRequest(app, '/page', {
          'if-none-match': String(hit.headers.etag),
        });
        expect(notModified.status).toBe(304);
        expect(notModified.headers['x-request-id']).toBe('req-4');
      } finally {
        await cache.close();
      }
    });
  },
);
