/**
 * hits/stale — issue 6, target 3: a STALE response costs what a HIT costs (p99 within 1.5× of
 * the HIT's), and regenerating never blocks the event loop for more than a few ms.
 *
 * A page is made permanently stale without waiting for time to pass: it is prerendered with
 * an hour of freshness, then marked stale on demand (`revalidatePath`, stale mode), so every
 * request is STALE from the first one and triggers a background regeneration —
 * - `20 KB, regeneration failing`: the route throws for every render after the first, so each
 *   regeneration fails and the next one backs off (1 s, 2 s, 4 s…): the requests measure the
 *   STALE answer alone;
 * - `200 KB, regenerated back to back`: regenerations succeed, and each success marks the page
 *   stale again, so a new one starts with the next request. Each one renders 200 KB through
 *   Express and compresses it (brotli and gzip, with zlib's async API on the thread pool).
 * The load is paced at 1,000 req/s rather than saturating, so that a p99 is each request's own
 * latency and not queueing; each row's result is its p99, and the ratio compares it with the
 * HIT's. The server's event-loop delay is monitored in every variant. A last row times the
 * loop with the same regenerations and no traffic at all, in a child of its own.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express from 'express';
import { isr } from '../../lib';
import { cachedExpress } from '../lib/apps';
import { htmlPage } from '../lib/fixtures';
import { measureHttp } from '../lib/measure';
import type { Row, Scenario, Served } from '../lib/scenario';
import { runTask } from '../lib/task';

const SMALL = htmlPage(20 * 1024);
const LARGE = htmlPage(200 * 1024);
const HIT = 'HIT, 20 KB';
const FAILING = 'STALE, 20 KB, regeneration failing';
const LARGE_HIT = 'HIT, 200 KB';
const BACK_TO_BACK = 'STALE, 200 KB, regenerated back to back';
const QUIET_REGENERATIONS = 20;
/**
 * Paced load (req/s): latencies are then each request's own, not queueing behind a saturated
 * server; about an eighth of what a HIT can do on the machine in RESULTS.md, leaving the CPU
 * time that back-to-back regenerations need.
 */
const RATE = 1_000;

interface QuietResult {
  regenerations: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
}

/** A page served STALE on every request, each one triggering a regeneration (see above). */
async function stalePage(page: string, failing: boolean): Promise<Served> {
  let renders = 0;
  let failures = 0;
  let regenerations = 0;
  let renderMs = 0;
  const cache = isr({ onError: () => (failures += 1) });
  const app = express();
  app.use(cache);
  app.get('/page', (_req, res) => {
    renders += 1;
    if (failing && renders > 1) throw new Error('the CMS is down');
    res.isr({ revalidate: 3600 });
    res.type('html').send(page);
  });
  await cache.prerender(['/page'], { app });
  await cache.revalidatePath('/page');
  cache.on('regenerate:success', ({ duration }) => {
    regenerations += 1;
    renderMs += duration;
    // Stale again at once: the next request starts the next regeneration.
    cache.revalidatePath('/page').catch(() => {});
  });
  return {
    listener: app,
    renders: () => renders,
    close: () => cache.close(),
    notes: () =>
      failing
        ? [`${failures} regenerations failed, backing off`]
        : [
            `${regenerations} regenerations of ${(regenerations && renderMs / regenerations).toFixed(0)} ms each`,
          ],
  };
}

export const stale: Scenario = {
  name: 'hits/stale',
  description:
    'STALE vs HIT p99 at 1,000 req/s (target ≤ 1.5×), event-loop delay while 200 KB pages regenerate',
  async run(context) {
    const hit = { 'x-isr-cache': 'HIT' };
    const stale = { 'x-isr-cache': 'STALE' };
    const paced = { path: '/page', rate: RATE, loopDelay: true };
    const rows = await measureHttp(context, [
      { ...paced, variant: HIT, expect: hit, group: '20 KB', baseline: true },
      { ...paced, variant: FAILING, expect: stale, group: '20 KB', notes: ['target ≤ 1.5×'] },
      { ...paced, variant: LARGE_HIT, expect: hit, group: '200 KB', baseline: true },
      { ...paced, variant: BACK_TO_BACK, expect: stale, group: '200 KB' },
    ]);
    context.log(`  ${QUIET_REGENERATIONS} regenerations of 200 KB, no traffic`);
    const quiet = await runTask<QuietResult>(context, 'quiet', QUIET_REGENERATIONS);
    const quietRow: Row = {
      variant: 'loop delay: 200 KB regenerations, no traffic',
      value: quiet.max,
      unit: 'ms',
      p50: quiet.p50,
      p99: quiet.p99,
      latencyUnit: 'ms',
      group: 'no traffic',
      notes: [
        `max delay; ${quiet.regenerations} regenerations in ${quiet.seconds.toFixed(1)} s, one at a time`,
      ],
    };
    return [...rows, quietRow];
  },
  serve(variant) {
    if (variant === HIT) return cachedExpress(SMALL);
    if (variant === LARGE_HIT) return cachedExpress(LARGE);
    if (variant === FAILING) return stalePage(SMALL, true);
    if (variant === BACK_TO_BACK) return stalePage(LARGE, false);
    throw new Error(`unknown variant "${variant}"`);
  },
  async task(name, input) {
    if (name !== 'quiet') throw new Error(`unknown task "${name}"`);
    const count = input as number;
    const app = express();
    const cache = isr({ revalidate: false, app });
    app.use(cache);
    app.get('/page', (_req, res) => res.type('html').send(LARGE));
    await cache.prerender(['/page'], { app });
    const loop = monitorEventLoopDelay({ resolution: 1 });
    const started = performance.now();
    loop.enable();
    for (let i = 0; i < count; i += 1) {
      await cache.revalidatePath('/page', { mode: 'regenerate' });
      await cache.idle();
    }
    loop.disable();
    const seconds = (performance.now() - started) / 1000;
    const stats = cache.stats();
    await cache.close();
    // Delay beyond the 1 ms sampling interval, in ms (as the server child reports it).
    const late = (ns: number) => Math.max(0, ns / 1e6 - 1);
    return {
      regenerations: stats.regenerations.succeeded,
      seconds,
      p50: late(loop.percentile(50)),
      p99: late(loop.percentile(99)),
      max: late(loop.max),
    } satisfies QuietResult;
  },
};
