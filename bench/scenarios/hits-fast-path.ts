/**
 * hits/fast-path — `http.createServer(cache.handler(app))` answers fresh
 * hits before Express sees the request. Its HIT req/s against a bare `node:http` server
 * answering a precomputed Buffer (target ≥ 0.6×), with the middleware HIT for comparison;
 * then the same for a 304 (If-None-Match carrying the page's ETag). HEAD cannot be measured:
 * neither wrk 4.1 nor autocannon 8 reads a HEAD response (both wait for the Content-Length
 * bytes of a body that never comes), so its row says so.
 */
import { bareListener, cachedExpress } from '../lib/apps';
import { htmlPage } from '../lib/fixtures';
import { measureHttp } from '../lib/measure';
import type { Scenario, Served } from '../lib/scenario';

const PAGE = htmlPage(20 * 1024);
/** Set by the route (and the bare server), so the load generator can send it back. */
const ETAG = '"bench-page-v1"';
const BARE = 'node:http Buffer';
const HANDLER = 'cache.handler(app) HIT';
const MIDDLEWARE = 'app.use(isr()) HIT';
const BARE_304 = 'node:http 304';
const HANDLER_304 = 'cache.handler(app) 304';
const HIT = { 'x-isr-cache': 'HIT' };
const REVALIDATE = { 'if-none-match': ETAG };

export const fastPath: Scenario = {
  name: 'hits/fast-path',
  description:
    'HIT and 304 req/s of cache.handler(app) vs a bare node:http Buffer server (target ≥ 0.6×)',
  async run(context) {
    const rows = await measureHttp(context, [
      { variant: BARE, path: '/page', group: 'GET 200', baseline: true },
      {
        variant: HANDLER,
        path: '/page',
        expect: HIT,
        group: 'GET 200',
        notes: ['target ≥ 0.6×'],
      },
      { variant: MIDDLEWARE, path: '/page', expect: HIT, group: 'GET 200' },
      {
        variant: BARE_304,
        path: '/page',
        headers: REVALIDATE,
        status: 304,
        group: '304',
        baseline: true,
      },
      {
        variant: HANDLER_304,
        path: '/page',
        headers: REVALIDATE,
        status: 304,
        expect: HIT,
        group: '304',
      },
    ]);
    if (context.settings.load.name === 'autocannon') {
      // The bare server outruns autocannon on one core: the ratios would read close to 1.
      for (const row of rows) row.notes?.push('autocannon-bound: install wrk for this scenario');
    }
    rows.push({
      variant: 'HEAD (handler and bare)',
      value: Number.NaN,
      unit: 'req/s',
      group: 'HEAD',
      skipped: true,
      notes: ['not measurable: wrk 4.1 and autocannon 8 hang on HEAD responses'],
    });
    return rows;
  },
  serve(variant): Served {
    if (variant === BARE || variant === BARE_304)
      return { listener: bareListener(PAGE, { etag: ETAG }) };
    if (variant === HANDLER || variant === HANDLER_304)
      return cachedExpress(PAGE, { etag: ETAG, fastPath: true });
    if (variant === MIDDLEWARE) return cachedExpress(PAGE, { etag: ETAG });
    throw new Error(`unknown variant "${variant}"`);
  },
};
