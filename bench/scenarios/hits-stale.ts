/**
 * hits/stale — a STALE response costs what a HIT costs (p99 within 1.5× of
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
 *   Express and compresses it (brotli and gzip, with zlib's async API on the thread pool): an
 *   adversarial load, as a real page regenerates once per window.
 * Each is measured against a fresh page of the same size **in the same server at the same
 * moments**: the client (on the load CPU, raw sockets) alternates requests for the two pages
 * and times each one, so a GC pause, a regeneration or a busy moment weighs on both alike.
 * (Through Express a p99 at this rate is mostly such pauses: measured on separate servers one
 * after the other, the 20 KB ratio moved between 0.7× and 1.7× from run to run.)
 * The load is paced at 1,000 req/s rather than saturating, so that a p99 is each request's own
 * latency and not queueing; each row's result is its p99, and the ratio compares it with the
 * HIT's. The server's event-loop delay is monitored in every variant. A last row times the
 * loop with the same regenerations and no traffic at all, in a child of its own.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import express from 'express';
import { isr } from '../../lib';
import { htmlPage } from '../lib/fixtures';
import { connectMany } from '../lib/raw-client';
import type { Context, Row, Scenario, Served } from '../lib/scenario';
import { startServer } from '../lib/server';
import { summarize } from '../lib/stats';
import { runTask } from '../lib/task';

const SMALL = htmlPage(20 * 1024);
const LARGE = htmlPage(200 * 1024);
const HIT = 'HIT, 20 KB';
const FAILING = 'STALE, 20 KB, regeneration failing';
/** Connections of the interleaving client (as many as wrk's). */
const CONNECTIONS = 50;
const LARGE_HIT = 'HIT, 200 KB';
const BACK_TO_BACK = 'STALE, 200 KB, regenerated back to back';

/** A server with a fresh page and a stale one, measured together (interleaved requests). */
interface Pair {
  server: string;
  page: string;
  /** Every regeneration of the stale page fails (else each success makes it stale again). */
  failing: boolean;
  group: string;
  hit: string;
  stale: string;
}

const PAIRS: Pair[] = [
  {
    server: 'fresh and stale 20 KB pages, one server',
    page: SMALL,
    failing: true,
    group: '20 KB',
    hit: HIT,
    stale: FAILING,
  },
  {
    server: 'fresh and stale 200 KB pages, one server',
    page: LARGE,
    failing: false,
    group: '200 KB',
    hit: LARGE_HIT,
    stale: BACK_TO_BACK,
  },
];
const QUIET_REGENERATIONS = 20;
/**
 * Paced load (req/s): latencies are then each request's own, not queueing behind a saturated
 * server; about an eighth of what a HIT can do on the machine in RESULTS.md, leaving the CPU
 * time that back-to-back regenerations need.
 */
const RATE = 1_000;

interface Latencies {
  /** Each request's time from its write to its last byte, ms. */
  ms: number[];
  /** Answers whose x-isr-cache was not the one expected. */
  unexpected: number;
}

interface PairResult {
  fresh: Latencies;
  stale: Latencies;
  seconds: number;
}

interface QuietResult {
  regenerations: number;
  seconds: number;
  p50: number;
  p99: number;
  max: number;
}

/**
 * `/fresh`, a page that stays fresh (every request a HIT), and `/page`, served STALE on
 * every request with every regeneration failing; `/ping` answers outside the cache.
 */
async function freshAndStalePages(page: string, failing: boolean): Promise<Served> {
  const served = await stalePage(page, failing, (app) => {
    app.get('/fresh', (_req, res) => {
      res.isr({ revalidate: 3600 });
      res.type('html').send(page);
    });
  });
  return served;
}

/** A page served STALE on every request, each one triggering a regeneration (see above). */
async function stalePage(
  page: string,
  failing: boolean,
  moreRoutes: (app: express.Express) => void = () => {},
): Promise<Served> {
  let renders = 0;
  let failures = 0;
  let regenerations = 0;
  let renderMs = 0;
  const cache = isr({ onError: () => (failures += 1) });
  const app = express();
  app.get('/ping', (_req, res) => res.end('ok'));
  app.use(cache);
  moreRoutes(app);
  app.get('/page', (_req, res) => {
    renders += 1;
    if (failing && renders > 1) throw new Error('the CMS is down');
    res.isr({ revalidate: 3600 });
    res.type('html').send(page);
  });
  await cache.prerender(['/page', '/fresh'], { app });
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
    const rows: Row[] = [];
    for (const pair of PAIRS) rows.push(...(await measurePair(context, pair)));
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
    const pair = PAIRS.find((p) => p.server === variant);
    if (pair !== undefined) return freshAndStalePages(pair.page, pair.failing);
    throw new Error(`unknown variant "${variant}"`);
  },
  async task(name, input) {
    if (name === 'interleaved') return interleaved(input as InterleavedInput);
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

/**
 * The STALE requirement (bench/README.md, `hits/stale`): the fresh and the stale page from one
 * server, requests alternating between them; one row each, the STALE one compared with the HIT.
 */
async function measurePair(context: Context, pair: Pair): Promise<Row[]> {
  const { settings } = context;
  const server = await startServer(context.scenario.name, pair.server, settings, {
    loopDelay: true,
  });
  let result: PairResult;
  let loopNote: string;
  let closed: { renders?: number; notes?: string[] };
  try {
    context.log(
      `  ${pair.server}: ${settings.warmupSeconds} s warm-up, then ${settings.runs * settings.seconds} s at ${RATE} req/s, alternating`,
    );
    await server.sample();
    result = await runTask<PairResult>(
      context,
      'interleaved',
      {
        origin: server.origin,
        rate: RATE,
        warmupSeconds: settings.warmupSeconds,
        seconds: settings.runs * settings.seconds,
      } satisfies InterleavedInput,
      { cpu: 'load' },
    );
    const { loopDelay } = await server.sample();
    loopNote = loopDelay
      ? `loop delay p99 ${loopDelay.p99.toFixed(1)} ms, max ${loopDelay.max.toFixed(1)} ms`
      : '';
  } finally {
    closed = await server.close();
  }
  const row = (variant: string, latencies: Latencies, baseline: boolean): Row => {
    const { p50, p99, count } = summarize(latencies.ms);
    const rate = count / result.seconds;
    return {
      variant,
      value: p99,
      unit: 'ms',
      p50,
      p99,
      latencyUnit: 'ms',
      group: pair.group,
      baseline,
      notes: [
        ...(baseline ? [] : ['target ≤ 1.5×']),
        `p99 of ${count.toLocaleString('en-US')} requests at ${Math.round(rate)} req/s (paced), alternating with the other page in the same server`,
        ...(baseline ? [] : (closed.notes ?? [])),
        loopNote,
        ...(latencies.unexpected > 0
          ? [`WARNING: ${latencies.unexpected} answers were not ${baseline ? 'HIT' : 'STALE'}`]
          : []),
      ].filter(Boolean),
    };
  };
  return [row(pair.hit, result.fresh, true), row(pair.stale, result.stale, false)];
}

interface InterleavedInput {
  origin: string;
  rate: number;
  warmupSeconds: number;
  seconds: number;
}

/**
 * The client of `measurePair`: `CONNECTIONS` keep-alive sockets, each sending one request at
 * a time, paced so that all together send `rate` per second (each pause drawn at random
 * between half and one and a half of the mean, so the connections do not march in step), each
 * socket alternating between the fresh and the stale page.
 */
async function interleaved(input: InterleavedInput): Promise<PairResult> {
  const sockets = await connectMany(input.origin, CONNECTIONS);
  const meanGapMs = (CONNECTIONS * 1000) / input.rate;
  const run = async (seconds: number): Promise<PairResult> => {
    const fresh: Latencies = { ms: [], unexpected: 0 };
    const stale: Latencies = { ms: [], unexpected: 0 };
    const started = performance.now();
    const until = started + seconds * 1000;
    await Promise.all(
      sockets.map(async (socket, i) => {
        let next = started + Math.random() * meanGapMs;
        for (let n = i; ; n += 1) {
          const wait = next - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
          if (performance.now() >= until) return;
          const wantStale = n % 2 === 1;
          const reply = await socket.request(wantStale ? '/page' : '/fresh');
          const into = wantStale ? stale : fresh;
          into.ms.push(reply.ms);
          if (reply.headers['x-isr-cache'] !== (wantStale ? 'STALE' : 'HIT')) into.unexpected += 1;
          next += meanGapMs * (0.5 + Math.random());
        }
      }),
    );
    return { fresh, stale, seconds: (performance.now() - started) / 1000 };
  };
  try {
    if (input.warmupSeconds > 0) await run(input.warmupSeconds);
    return await run(input.seconds);
  } finally {
    for (const c of sockets) c.socket.destroy();
  }
}
