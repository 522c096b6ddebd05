/**
 * shared-store/hits — what a HIT costs when pages live in Redis. The same 20 KB page
 * served from the memory store (baseline), from Redis with the in-process L1 in front, and
 * from Redis alone (`l1: false`, one round trip per hit). Each server has its own Redis
 * namespace, deleted when it closes.
 */
import express from 'express';
import { isr } from '../../lib';
import { htmlPage } from '../lib/fixtures';
import { measureHttp } from '../lib/measure';
import { openKeyv } from '../lib/redis';
import type { Scenario, Served } from '../lib/scenario';

const PAGE = htmlPage(20 * 1024);
const HIT = { 'x-isr-cache': 'HIT' };
const MEMORY = 'memory store';
const REDIS_L1 = 'redis + L1';
const REDIS_ONLY = 'redis, no L1';

export const sharedStoreHits: Scenario = {
  name: 'shared-store/hits',
  description: 'HIT req/s of a 20 KB page: memory store vs Redis with L1 vs Redis alone',
  run(context) {
    return measureHttp(context, [
      { variant: MEMORY, path: '/page', expect: HIT, baseline: true },
      { variant: REDIS_L1, path: '/page', expect: HIT },
      { variant: REDIS_ONLY, path: '/page', expect: HIT },
    ]);
  },
  serve(variant): Served {
    if (![MEMORY, REDIS_L1, REDIS_ONLY].includes(variant))
      throw new Error(`unknown variant "${variant}"`);
    const redis = variant === MEMORY ? undefined : openKeyv('hits');
    const cache = isr(redis ? { store: redis.keyv, l1: variant === REDIS_L1 } : {});
    let renders = 0;
    const app = express();
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.isr({ revalidate: 3600 }); // no page goes stale during the run
      res.type('html').send(PAGE);
    });
    return {
      listener: app,
      renders: () => renders,
      close: async () => {
        await cache.close();
        await redis?.close();
      },
    };
  },
};
