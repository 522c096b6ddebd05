/**
 * tag-clocks/hit-cost — what checking tag clocks adds to a HIT. HIT throughput of the
 * same 20 KB page carrying 0 or 5 tags (memory store); the ratio 5 tags / 0 tags shows the
 * cost. A plain Express 5 route sending the same precomputed page (no cache) is the reference.
 */
import express from 'express';
import { isr } from '../../lib';
import { htmlPage } from '../lib/fixtures';
import { measureHttp } from '../lib/measure';
import type { Scenario, Served } from '../lib/scenario';

const PAGE = htmlPage(20 * 1024);
const TAGS: Record<string, string[]> = {
  'isr HIT, 0 tags': [],
  'isr HIT, 5 tags': ['post:42', 'author:7', 'category:news', 'list:home', 'related:42'],
};
const PLAIN = 'express res.send, no cache';
const HIT = { 'x-isr-cache': 'HIT' };

export const hitCost: Scenario = {
  name: 'tag-clocks/hit-cost',
  description:
    'HIT req/s of a 20 KB page with 0 vs 5 tags (memory store); plain Express 5 route as reference',
  run(context) {
    return measureHttp(context, [
      { variant: 'isr HIT, 0 tags', path: '/page', expect: HIT, baseline: true },
      { variant: 'isr HIT, 5 tags', path: '/page', expect: HIT },
      { variant: PLAIN, path: '/page', notes: ['reference'] },
    ]);
  },
  serve(variant): Served {
    let renders = 0;
    const app = express();
    if (variant === PLAIN) {
      app.get('/page', (_req, res) => {
        renders += 1;
        res.type('html').send(PAGE);
      });
      return { listener: app, renders: () => renders };
    }
    const tags = TAGS[variant];
    if (tags === undefined) throw new Error(`unknown variant "${variant}"`);
    const cache = isr();
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      // An hour of freshness: no page goes stale during the run.
      res.isr({ revalidate: 3600, tags });
      res.type('html').send(PAGE);
    });
    return { listener: app, renders: () => renders, close: () => cache.close() };
  },
};
