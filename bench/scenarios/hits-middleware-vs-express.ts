/**
 * hits/middleware-vs-express — `app.use(isr())` mounted first answers a HIT
 * with less work than Express's own `res.send` of the same precomputed 20 KB page (target
 * ≥ 1.2× its req/s). A bare `node:http` server answering a precomputed Buffer is the
 * reference: what no Node server can beat.
 */
import { bareListener, cachedExpress, plainExpress } from '../lib/apps';
import { htmlPage } from '../lib/fixtures';
import { measureHttp } from '../lib/measure';
import type { Scenario, Served } from '../lib/scenario';

const PAGE = htmlPage(20 * 1024);
const EXPRESS = 'express res.send, no cache';
const MIDDLEWARE = 'app.use(isr()) HIT';
const BARE = 'node:http Buffer, no Express';

export const middlewareVsExpress: Scenario = {
  name: 'hits/middleware-vs-express',
  description:
    'HIT req/s of app.use(isr()) vs a plain Express 5 route sending the same 20 KB page (target ≥ 1.2×)',
  run(context) {
    return measureHttp(context, [
      { variant: EXPRESS, path: '/page', baseline: true },
      {
        variant: MIDDLEWARE,
        path: '/page',
        expect: { 'x-isr-cache': 'HIT' },
        notes: ['target ≥ 1.2×'],
      },
      { variant: BARE, path: '/page', notes: ['reference'] },
    ]);
  },
  serve(variant): Served {
    if (variant === EXPRESS) return plainExpress(PAGE);
    if (variant === MIDDLEWARE) return cachedExpress(PAGE);
    if (variant === BARE) return { listener: bareListener(PAGE) };
    throw new Error(`unknown variant "${variant}"`);
  },
};
