/**
 * tag-clocks/revalidate-scale — the scale requirement: invalidation must not scan the
 * cache. Times one `revalidateTag` call (stale mode) with 1,000 and with 100,000 pages in the
 * store, for the memory store and for Redis; each 100k/1k ratio should be close to 1. Then
 * checks over HTTP that such a call really turned cached pages from HIT into STALE, so the
 * number is the cost of a working invalidation and not of a no-op.
 */
import type { Server } from 'node:http';
import express from 'express';
import type Keyv from 'keyv';
import { type CacheEntry, type IsrMiddleware, isr, MemoryStore } from '../../lib';
import { SerializedStore } from '../../lib/stores/serialized-store';
import { fill } from '../lib/fill';
import { cacheEntry } from '../lib/fixtures';
import { get } from '../lib/http';
import { callRow, timeCalls } from '../lib/measure';
import { openKeyv, REDIS_URL, redisReachable } from '../lib/redis';
import type { Context, Row, Scenario } from '../lib/scenario';

const SIZES = [1_000, 100_000];
/** Page i carries the tag `group-<i % GROUPS>`: with 100,000 pages one tag covers 100 pages. */
const GROUPS = 1_000;
/** Tags timed, in this order, for every size: `group-0` … `group-998` (`group-999` is the check's). */
const TIMED_TAGS = GROUPS - 1;
/** Timed calls per size, split in ROUNDS that alternate between the sizes. */
const CALLS: Record<Kind, number> = { memory: 2_000, redis: 500 };
const ROUNDS = 10;
/** Untimed calls per size first: the Keyv/Redis path takes about a thousand calls to settle. */
const WARMUP_CALLS = 1_000;
/** Redis keys written by the fill expire by themselves if the cleanup never runs. */
const SAFETY_TTL_MS = 30 * 60 * 1000;
const BODY = Buffer.from('<!doctype html><title>p</title><p>A small cached page.</p>');

type Kind = 'memory' | 'redis';

interface Fixture {
  /** What `isr({ store })` gets. */
  store: MemoryStore | Keyv;
  /** Writes one entry straight into the store, as the middleware would have stored it. */
  put(key: string, entry: CacheEntry): unknown;
  close(): Promise<void>;
}

function memoryFixture(): Fixture {
  const store = new MemoryStore({ maxSize: 4e9 });
  return { store, put: (key, entry) => store.set(key, entry), close: async () => store.clear() };
}

function redisFixture(size: number): Fixture {
  const { keyv, close } = openKeyv(`scale-${size}`);
  // The library's own serialisation (so the filled pages read back as HITs), with a TTL.
  const writer = new SerializedStore({
    get: (key) => keyv.get(key),
    delete: (key) => keyv.delete(key),
    set: (key, value) => keyv.set(key, value, SAFETY_TTL_MS),
  });
  return { store: keyv, put: (key, entry) => writer.set(key, entry), close };
}

interface Subject {
  size: number;
  variant: string;
  fixture: Fixture;
  cache?: IsrMiddleware;
  fillMs: number;
  samples: number[];
}

/**
 * Fills one store per size, then times the sizes in alternating rounds, so that JIT warm-up,
 * garbage collection after a fill or a busy neighbour weigh on every size alike.
 */
async function measure(context: Context, kind: Kind): Promise<Row[]> {
  const subjects: Subject[] = [];
  try {
    for (const size of SIZES) {
      const variant = `${kind}, ${size.toLocaleString('en-US')} entries`;
      const fixture = kind === 'memory' ? memoryFixture() : redisFixture(size);
      const subject: Subject = { size, variant, fixture, fillMs: 0, samples: [] };
      subjects.push(subject);
      context.log(`  ${variant}: filling`);
      const generatedAt = Date.now() - 60_000;
      subject.fillMs = await fill(size, kind === 'memory' ? size : 1000, (i) =>
        fixture.put(
          `/p/${i}`,
          cacheEntry(`/p/${i}`, BODY, { tags: [`group-${i % GROUPS}`], generatedAt }),
        ),
      );
      subject.cache = isr({ store: fixture.store, revalidate: false });
    }
    context.log(`  ${kind}: timing revalidateTag, ${ROUNDS} rounds alternating the sizes`);
    for (const { cache } of subjects)
      await timeCalls(
        0,
        () => undefined,
        WARMUP_CALLS,
        (i) => cache?.revalidateTag(`warm-up-${i}`),
      );
    const perRound = Math.ceil(CALLS[kind] / ROUNDS);
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const subject of subjects) {
        const { cache } = subject;
        const first = round * perRound;
        subject.samples.push(
          ...(await timeCalls(perRound, (i) =>
            cache?.revalidateTag(`group-${(first + i) % TIMED_TAGS}`),
          )),
        );
      }
    }
    const rows: Row[] = [];
    for (const subject of subjects) {
      const check = await checkInvalidation(subject.cache as IsrMiddleware, subject.size);
      rows.push(
        callRow(subject.variant, subject.samples, {
          group: kind,
          baseline: subject.size === SIZES[0],
          notes: [`filled in ${(subject.fillMs / 1000).toFixed(1)} s`, check],
        }),
      );
    }
    return rows;
  } finally {
    for (const subject of subjects) {
      await subject.cache?.close();
      await subject.fixture.close();
    }
  }
}

/**
 * Pages tagged `group-999` (the first and the last one) are HITs; after one
 * `revalidateTag('group-999')` both are STALE. Returns the note for the table.
 */
async function checkInvalidation(cache: IsrMiddleware, size: number): Promise<string> {
  const app = express();
  app.use(cache);
  app.get('/p/:id', (req, res) => {
    res.isr({ tags: [`group-${Number(req.params.id) % GROUPS}`] });
    res.type('html').send('<p>re-rendered</p>');
  });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  try {
    const origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const pages = [...new Set([`/p/${GROUPS - 1}`, `/p/${size - 1}`])];
    const states = async () =>
      (await Promise.all(pages.map((p) => get(origin + p)))).map((r) => r.headers['x-isr-cache']);
    const before = await states();
    await cache.revalidateTag(`group-${GROUPS - 1}`);
    const after = await states();
    await cache.idle();
    const ok = before.every((s) => s === 'HIT') && after.every((s) => s === 'STALE');
    return ok
      ? `HIT→STALE checked on ${pages.length} page(s)`
      : `CHECK FAILED: before ${before.join(',')}, after ${after.join(',')} (expected HIT, then STALE)`;
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

export const revalidateScale: Scenario = {
  name: 'tag-clocks/revalidate-scale',
  description:
    'one revalidateTag call (stale mode) with 1,000 vs 100,000 cached pages, memory store and Redis',
  async run(context) {
    const rows = await measure(context, 'memory');
    if (await redisReachable()) return [...rows, ...(await measure(context, 'redis'))];
    return [
      ...rows,
      ...SIZES.map((size) => ({
        variant: `redis, ${size.toLocaleString('en-US')} entries`,
        value: Number.NaN,
        unit: 'µs/call' as const,
        group: 'redis',
        skipped: true,
        notes: [`no Redis at ${REDIS_URL} (set REDIS_URL)`],
      })),
    ];
  },
};
