/**
 * shared-store/eviction — a flood of unique URLs (`/junk?junk=<n>`) into a Redis
 * with `maxmemory` 16 MB and `allkeys-lru`, while one hot page is hammered alongside it. Every
 * key the cache writes has a TTL and the tag clocks survive eviction, so: Redis stays within
 * maxmemory by evicting, the hot page stays a HIT (it is read from Redis on every request: no
 * L1), and pages invalidated with `mode: 'expire'` before the flood are never served again
 * after it, whatever Redis evicted.
 *
 * The Redis is a `redis-server` of the scenario's own on a free loopback port (nothing on disk,
 * killed at the end): the shared one at REDIS_URL is never reconfigured. The app runs in a
 * server child on the server CPU; the clients and the INFO sampling run in the runner.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net, { type AddressInfo } from 'node:net';
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import { isr } from '../../lib';
import { onCleanup, throwIfStopped } from '../lib/cleanup';
import { htmlPage } from '../lib/fixtures';
import type { Context, Row, Scenario, Served } from '../lib/scenario';
import { startServer } from '../lib/server';
import { summarize } from '../lib/stats';

const MAXMEMORY_MB = 16;
const PAGES = 1_000;
/** Page i carries `group-<i % GROUPS>`; groups below EXPIRED_GROUPS are expired before the flood. */
const GROUPS = 50;
const EXPIRED_GROUPS = 25;
const FLOOD = 6_000;
const FLOOD_CONNECTIONS = 16;
const HOT_CONNECTIONS = 4;
const VARIANT = 'redis maxmemory 16 MB allkeys-lru, l1: false';
/** How the runner tells the server child where its Redis is. */
const URL_ENV = 'BENCH_EVICTION_REDIS_URL';
/** A realistic (compressible) 8 KB page per junk URL; its title makes it distinct. */
const JUNK = htmlPage(8 * 1024, 'Junk __N__            ');
const MB = 1024 * 1024;

function freePort(): Promise<number> {
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A redis-server of our own with `maxmemory`, killed by the scenario's cleanup. */
async function startRedis(): Promise<{ url: string; stop(): Promise<void> }> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory',
      `${MAXMEMORY_MB}mb`,
      '--maxmemory-policy',
      'allkeys-lru',
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.on('error', () => {});
  const stop = async () => {
    unregister();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  const unregister = onCleanup(stop);
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; ; i += 1) {
    const client = createClient({ url, socket: { reconnectStrategy: false } });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      client.destroy();
      return { url, stop };
    } catch (error) {
      if (client.isOpen) client.destroy();
      if (i >= 200 || child.exitCode !== null)
        throw new Error(`redis-server did not start: ${error}`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
}

/** The one command the runner sends its Redis (INFO, DBSIZE). */
interface Admin {
  sendCommand<T>(args: string[]): Promise<T>;
}

async function infoField(admin: Admin, field: string): Promise<number> {
  const text = await admin.sendCommand<string>(['INFO', 'all']);
  const match = new RegExp(`^${field}:(\\d+)`, 'm').exec(text);
  return match === null ? Number.NaN : Number(match[1]);
}

interface Answer {
  status: number;
  state: string;
  body: string;
  ms: number;
}

async function fetchPage(url: string, init?: RequestInit): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(url, init);
  const body = await res.text();
  return {
    status: res.status,
    state: res.headers.get('x-isr-cache') ?? '',
    body,
    ms: performance.now() - started,
  };
}

/** Runs `work(i)` for i in 0..count-1 on `connections` concurrent loops. */
async function pool(count: number, connections: number, work: (i: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      for (let i = next++; i < count; i = next++) {
        throwIfStopped();
        await work(i);
      }
    }),
  );
}

function tally(states: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const s of states) counts.set(s || '(none)', (counts.get(s || '(none)') ?? 0) + 1);
  return [...counts].map(([state, n]) => `${n.toLocaleString('en-US')} ${state}`).join(', ');
}

export const sharedStoreEviction: Scenario = {
  name: 'shared-store/eviction',
  description: `a flood of ${FLOOD.toLocaleString('en-US')} unique URLs into a Redis with maxmemory ${MAXMEMORY_MB} MB (allkeys-lru) beside a hot page: memory, evictions, hot hit rate, expired pages served`,
  async run(context: Context): Promise<Row[]> {
    context.log(`  starting a redis-server of our own (maxmemory ${MAXMEMORY_MB} MB, allkeys-lru)`);
    const redis = await startRedis();
    const admin = createClient({ url: redis.url, socket: { reconnectStrategy: false } });
    admin.on('error', () => {});
    await admin.connect();
    const closeAdmin = onCleanup(() => {
      if (admin.isOpen) admin.destroy();
    });
    process.env[URL_ENV] = redis.url;
    const server = await startServer(context.scenario.name, VARIANT, context.settings);
    const url = (path: string) => server.origin + path;
    let closed = false;
    try {
      // Before the flood: every page stored, then half of them expired by tag.
      context.log(`  storing ${PAGES.toLocaleString('en-US')} pages, expiring half of them`);
      const before = new Map<number, string>();
      await pool(PAGES, 16, async (id) => {
        const reply = await fetchPage(url(`/p/${id}`));
        if (reply.state !== 'MISS') throw new Error(`/p/${id}: ${reply.state}, not a MISS`);
        before.set(id, reply.body);
      });
      const hotFirst = await fetchPage(url('/hot'));
      if (hotFirst.state !== 'MISS') throw new Error(`/hot: ${hotFirst.state}, not a MISS`);
      for (let g = 0; g < EXPIRED_GROUPS; g += 1) {
        const reply = await fetchPage(url(`/bench/expire/group-${g}`), { method: 'POST' });
        if (reply.status !== 204) throw new Error(`expire group-${g}: ${reply.status}`);
      }
      const keysBefore = Number(await admin.sendCommand(['DBSIZE']));
      const evictedBefore = await infoField(admin, 'evicted_keys');

      // The flood, the hot page alongside it, used_memory sampled every 50 ms.
      context.log(
        `  flooding ${FLOOD.toLocaleString('en-US')} unique URLs (${FLOOD_CONNECTIONS} connections) beside /hot (${HOT_CONNECTIONS})`,
      );
      let flooding = true;
      let sampledPeak = 0;
      const sampler = (async () => {
        while (flooding) {
          sampledPeak = Math.max(sampledPeak, await infoField(admin, 'used_memory'));
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      })();
      const hot: Answer[] = [];
      const junkStates: string[] = [];
      const started = performance.now();
      const hotLoops = Array.from({ length: HOT_CONNECTIONS }, async () => {
        while (flooding) {
          throwIfStopped();
          hot.push(await fetchPage(url('/hot')));
        }
      });
      try {
        await pool(FLOOD, FLOOD_CONNECTIONS, async (n) => {
          const reply = await fetchPage(url(`/junk?junk=${n}`));
          junkStates.push(reply.status === 200 ? reply.state : `status ${reply.status}`);
        });
      } finally {
        flooding = false;
        await Promise.all(hotLoops);
        await sampler;
      }
      const floodSeconds = (performance.now() - started) / 1000;
      const evicted = (await infoField(admin, 'evicted_keys')) - evictedBefore;
      const usedEnd = await infoField(admin, 'used_memory');
      const redisPeak = await infoField(admin, 'used_memory_peak');
      const keysAfter = Number(await admin.sendCommand(['DBSIZE']));

      // After the flood: the expired pages (never served again), then the others.
      const expiredStates: string[] = [];
      let expiredServedAgain = 0;
      const otherStates: string[] = [];
      for (let id = 0; id < PAGES; id += 1) {
        throwIfStopped();
        const reply = await fetchPage(url(`/p/${id}`));
        if (id % GROUPS < EXPIRED_GROUPS) {
          expiredStates.push(reply.state);
          if (reply.state !== 'MISS' || reply.body === before.get(id)) expiredServedAgain += 1;
        } else {
          otherStates.push(reply.state);
        }
      }
      const { renders, notes: served } = await server.close();
      closed = true;

      const hits = hot.filter((a) => a.state === 'HIT').length;
      const hotLatency = summarize(hot.map((a) => a.ms));
      /** Bytes over maxmemory: Redis evicts before each command, so a write can overshoot. */
      const over = (bytes: number) =>
        bytes > MAXMEMORY_MB * MB
          ? `OVER maxmemory by ${(bytes - MAXMEMORY_MB * MB).toLocaleString('en-US')} bytes`
          : `within maxmemory (${(MAXMEMORY_MB * MB - bytes).toLocaleString('en-US')} bytes to spare)`;
      const mb = (bytes: number) => bytes / MB;
      const memoryRow = (variant: string, bytes: number, notes: string[]): Row => ({
        variant,
        value: mb(bytes),
        unit: 'MB',
        group: 'memory',
        notes,
      });
      return [
        {
          variant: `maxmemory (${VARIANT})`,
          value: MAXMEMORY_MB,
          unit: 'MB',
          group: 'memory',
          baseline: true,
          notes: [
            `${keysBefore.toLocaleString('en-US')} keys before the flood (${PAGES.toLocaleString('en-US')} pages, their tag clocks, /hot), ${keysAfter.toLocaleString('en-US')} after`,
          ],
        },
        memoryRow('used_memory, peak sampled during the flood', sampledPeak, [
          `${sampledPeak.toLocaleString('en-US')} bytes, ${over(sampledPeak)}`,
          `sampled every 50 ms; Redis's own used_memory_peak ${redisPeak.toLocaleString('en-US')} bytes, ${over(redisPeak)}`,
        ]),
        memoryRow('used_memory after the flood', usedEnd, [
          `${usedEnd.toLocaleString('en-US')} bytes, ${over(usedEnd)}`,
          `${evicted.toLocaleString('en-US')} keys evicted during the flood`,
        ]),
        {
          variant: `flood: ${FLOOD.toLocaleString('en-US')} unique URLs, 8 KB each`,
          value: FLOOD / floodSeconds,
          unit: 'req/s',
          group: 'flood',
          notes: [
            `${FLOOD_CONNECTIONS} connections, ${floodSeconds.toFixed(1)} s`,
            `x-isr-cache ${tally(junkStates)}`,
            `renders ${renders ?? '?'} in all`,
            ...(served ?? []),
          ],
        },
        {
          variant: 'hot page alongside the flood',
          value: hot.length / floodSeconds,
          unit: 'req/s',
          p50: hotLatency.p50,
          p99: hotLatency.p99,
          latencyUnit: 'ms',
          group: 'flood',
          notes: [
            `hit rate ${((100 * hits) / Math.max(1, hot.length)).toFixed(1)}% (${tally(hot.map((a) => a.state))})`,
            `${HOT_CONNECTIONS} connections, read from Redis on every request (l1: false)`,
          ],
        },
        {
          variant: `expired pages served again (of ${expiredStates.length} expired before the flood)`,
          value: expiredServedAgain,
          unit: 'pages',
          group: 'after the flood',
          notes: [
            expiredServedAgain === 0 ? 'must be 0: it is' : 'MUST BE 0: FAILED',
            `x-isr-cache ${tally(expiredStates)}`,
            `the ${otherStates.length} pages not invalidated: ${tally(otherStates)}`,
          ],
        },
      ];
    } finally {
      if (!closed) await server.close();
      delete process.env[URL_ENV];
      closeAdmin();
      if (admin.isOpen) admin.destroy();
      await redis.stop();
    }
  },
  serve(variant): Served {
    if (variant !== VARIANT) throw new Error(`unknown variant "${variant}"`);
    const url = process.env[URL_ENV];
    if (url === undefined) throw new Error(`${URL_ENV} is not set`);
    const keyv = new Keyv({
      store: new KeyvRedis(url, { connectionTimeout: 2000 }),
      namespace: 'express-isr-bench-eviction',
      useKeyPrefix: false,
    });
    keyv.on('error', () => {});
    const cache = isr({ store: keyv, l1: false, revalidate: 3600 });
    let renders = 0;
    const app = express();
    app.use(cache);
    app.post('/bench/expire/:tag', async (req, res) => {
      await cache.revalidateTag(req.params.tag, { mode: 'expire' });
      res.status(204).end();
    });
    app.get('/p/:id', (req, res) => {
      renders += 1;
      res.isr({ tags: [`group-${Number(req.params.id) % GROUPS}`] });
      res.type('html').send(`<p>page ${req.params.id}, render ${renders}</p>`);
    });
    app.get('/hot', (_req, res) => {
      renders += 1;
      res.type('html').send(htmlPage(8 * 1024, `Hot ${renders}`));
    });
    app.get('/junk', (req, res) => {
      renders += 1;
      res.type('html').send(JUNK.replace('__N__', String(req.query.junk).padStart(6, '0')));
    });
    return {
      listener: app,
      renders: () => renders,
      close: async () => {
        await cache.idle();
        await cache.close();
        await keyv.disconnect();
      },
    };
  },
};
