/**
 * memory/fill — filling 100,000 distinct 20 KB pages into a 50 MB memory
 * store keeps the store within its byte budget (±10%) and the process's memory bounded.
 *
 * 100,000 renders over HTTP would take minutes, so the pages are rendered in-process with
 * `cache.prerender(paths, { concurrency: 16, app })`: each one runs through the Express app as
 * a synthetic request, is captured and stored exactly as a MISS would store it. This runs in a
 * child of its own (`node --expose-gc`, on the server CPU), so the heap holds nothing but the
 * app and its cache. Compression is off (`compress: false`): brotli at quality 11 costs about
 * 1.4 ms per 20 KB page, 140 s of CPU for the fill; the store counts variants in its budget
 * the same way, so this changes how many pages fit, not whether the budget holds.
 *
 * Every 25,000 pages the child collects garbage and records RSS, heap and Buffer memory, so
 * the notes show whether memory stops growing once the store is full (after ~2,400 pages).
 */
import express from 'express';
import { isr, MemoryStore } from '../../lib';
import { htmlPage } from '../lib/fixtures';
import type { Row, Scenario } from '../lib/scenario';
import { runTask } from '../lib/task';

const PAGES = 100_000;
const CHECKPOINT = 25_000;
const BUDGET = 50 * 1024 * 1024;
const MB = 1024 * 1024;
/** A 20 KB page whose title makes it distinct: `__ID__` is replaced by the page number. */
const TEMPLATE = htmlPage(20 * 1024, 'Page __ID__      ');

interface Memory {
  pages: number;
  rss: number;
  heapUsed: number;
  /** What V8 has reserved for its heap (part of RSS even when unused). */
  heapTotal: number;
  arrayBuffers: number;
  storeSize: number;
  storeCount: number;
}

interface FillResult {
  before: Memory;
  checkpoints: Memory[];
  seconds: number;
  outcomes: Record<string, number>;
}

const mb = (bytes: number) => bytes / MB;

export const memoryFill: Scenario = {
  name: 'memory/fill',
  description: `${PAGES.toLocaleString('en-US')} distinct 20 KB pages into a 50 MB memory store: store size vs budget, RSS`,
  async run(context) {
    context.log(`  prerendering ${PAGES.toLocaleString('en-US')} pages in a child (--expose-gc)`);
    const r = await runTask<FillResult>(context, 'fill', PAGES, {
      nodeArgs: ['--expose-gc'],
      timeoutMs: 240_000,
    });
    const last = r.checkpoints[r.checkpoints.length - 1];
    const trail = (pick: (m: Memory) => number) =>
      r.checkpoints
        .map((m) => `${(m.pages / 1000).toFixed(0)}k ${mb(pick(m)).toFixed(1)}`)
        .join(', ');
    const outcomes = Object.entries(r.outcomes)
      .map(([outcome, n]) => `${n.toLocaleString('en-US')} ${outcome}`)
      .join(', ');
    const row = (variant: string, bytes: number, notes: string[], baseline = false): Row => ({
      variant,
      value: mb(bytes),
      unit: 'MB',
      baseline,
      notes,
    });
    return [
      row('budget: MemoryStore maxSize', BUDGET, ['baseline of the ratios below'], true),
      row(`store.size after ${PAGES.toLocaleString('en-US')} pages`, last.storeSize, [
        'target 0.90× to 1.10×',
        `${last.storeCount.toLocaleString('en-US')} pages kept`,
        `${outcomes} in ${r.seconds.toFixed(1)} s (${Math.round(PAGES / r.seconds).toLocaleString('en-US')} pages/s)`,
      ]),
      row('RSS growth over the fill, after GC', last.rss - r.before.rss, [
        `RSS ${mb(r.before.rss).toFixed(1)} MB before the fill, then MB after ${trail((m) => m.rss)}`,
      ]),
      row('heap used after the fill, after GC', last.heapUsed, [
        `before ${mb(r.before.heapUsed).toFixed(1)} MB; after ${trail((m) => m.heapUsed)}`,
        `heap reserved (heapTotal) ${mb(r.before.heapTotal).toFixed(1)} MB before, ${mb(last.heapTotal).toFixed(1)} MB after`,
      ]),
      row('Buffers (arrayBuffers) after the fill, after GC', last.arrayBuffers, [
        `page bodies live here; before ${mb(r.before.arrayBuffers).toFixed(1)} MB; after ${trail((m) => m.arrayBuffers)}`,
      ]),
    ];
  },
  async task(name, input) {
    if (name !== 'fill') throw new Error(`unknown task "${name}"`);
    const pages = input as number;
    const gc = (globalThis as { gc?: () => void }).gc;
    if (gc === undefined) throw new Error('run with node --expose-gc');
    const store = new MemoryStore({ maxSize: BUDGET });
    const app = express();
    const cache = isr({ store, compress: false, revalidate: false, app });
    app.use(cache);
    app.get('/p/:id', (req, res) => {
      res.type('html').send(TEMPLATE.replace('__ID__', req.params.id.padStart(6, '0')));
    });
    const measure = (done: number): Memory => {
      gc();
      const m = process.memoryUsage();
      return {
        pages: done,
        rss: m.rss,
        heapUsed: m.heapUsed,
        heapTotal: m.heapTotal,
        arrayBuffers: m.arrayBuffers,
        storeSize: store.size,
        storeCount: store.count,
      };
    };
    const before = measure(0);
    const checkpoints: Memory[] = [];
    const outcomes: Record<string, number> = {};
    const started = performance.now();
    for (let from = 0; from < pages; from += CHECKPOINT) {
      const paths = Array.from(
        { length: Math.min(CHECKPOINT, pages - from) },
        (_, i) => `/p/${from + i}`,
      );
      for (const { outcome } of await cache.prerender(paths, { concurrency: 16, app }))
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      checkpoints.push(measure(from + paths.length));
    }
    const seconds = (performance.now() - started) / 1000;
    await cache.close();
    return { before, checkpoints, seconds, outcomes } satisfies FillResult;
  },
};
