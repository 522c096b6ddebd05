/**
 * Store faults with real Redis servers: throwaway `redis-server`s on free
 * loopback ports, nothing persisted, never the shared Redis. One app process (this one) keeps
 * running through each fault:
 * - Redis SIGKILLed, then restarted on the same port: every request answered meanwhile, the
 *   outage reported once, caching (and invalidation) resumes without restarting the app.
 *   (redis-shared.test.ts kills Redis under load across two processes; this checks the
 *   recovery of one app in detail.)
 * - Redis slowed: `DEBUG SLEEP 2` (or `CLIENT PAUSE` where DEBUG is not enabled) while requests
 *   run, with `storeTimeout: 200`: zero failed requests, each answered within 1.5 s, one outage
 *   report; caching resumes after.
 * - Redis out of memory (`maxmemory` with `noeviction`, filled until writes fail with OOM):
 *   every request answered (rendered), nothing crashes, pages already stored are still read;
 *   after `CONFIG SET maxmemory 0`, caching works again.
 * The 1.5 s bound is not a speed test: it says a request waits for one store timeout (200 ms),
 * not for Redis.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import net from 'node:net';
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import { type IsrOptions, isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { listen } from '../helpers/http';
import { freePort, RedisServer, stopEverything } from '../helpers/instances';
import { sleep, waitFor } from '../helpers/time';

const LATENCY_BOUND_MS = 1500;

/** What this file did, printed once at the end (SECURITY.md quotes it). */
const figures = { faults: 0, requestsDuringFaults: 0, slowest: 0 };
afterAll(() => {
  console.log(
    `[store-faults] ${figures.faults} Redis faults injected; ${figures.requestsDuringFaults} requests ` +
      `during them, slowest ${figures.slowest} ms`,
  );
});

// ---------------------------------------------------------------------------------------------
// Throwaway Redis servers with the options a fault needs
// ---------------------------------------------------------------------------------------------

/** Whether a Redis answers PING on this port within `ms`. */
function pong(port: number, ms = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(ms, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}

function redisCli(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('redis-cli', ['-p', String(port), ...args], (error, stdout, stderr) => {
      if (error) reject(new Error(`redis-cli ${args.join(' ')}: ${stderr || error.message}`));
      else resolve(stdout.trim());
    });
  });
}

const servers = new Set<ChildProcess>();

/** A `redis-server` of this suite's own, with extra options; stopped after each test. */
async function startRedis(extra: string[] = []): Promise<{ port: number; url: string }> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', ...extra],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  servers.add(child);
  child.once('exit', () => servers.delete(child));
  const deadline = Date.now() + 10_000;
  while (!(await pong(port))) {
    if (child.exitCode !== null) throw new Error(`redis-server ${extra.join(' ')} exited`);
    if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`);
    await sleep(20);
  }
  return { port, url: `redis://127.0.0.1:${port}` };
}

async function stopServers(): Promise<void> {
  await Promise.all(
    [...servers].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGKILL');
        }),
    ),
  );
}

/** Redis 7 refuses DEBUG unless started with `--enable-debug-command yes` (an unknown flag before 7). */
async function debugFlags(): Promise<string[]> {
  const version = await new Promise<string>((resolve) =>
    execFile('redis-server', ['--version'], (_e, stdout) => resolve(stdout)),
  );
  const major = Number(/v=(\d+)/.exec(version)?.[1] ?? 0);
  return major >= 7 ? ['--enable-debug-command', 'yes'] : [];
}

// ---------------------------------------------------------------------------------------------
// The app
// ---------------------------------------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await stopEverything();
  await stopServers();
});

async function startApp(options: IsrOptions) {
  const recorder = errorRecorder();
  const cache = isr({
    storeTimeout: 200,
    onError: recorder.onError,
    logger: recorder.logger,
    ...options,
  });
  const app = express();
  const renders = new Map<string, number>();
  app.use(cache);
  app.get('/page/:id', (req, res) => {
    renders.set(req.path, (renders.get(req.path) ?? 0) + 1);
    res.isr({ tags: ['pages'] });
    res.type('html').send(`<!doctype html><p>path=${req.path}</p>`);
  });
  const site = await listen(app);
  cleanups.push(async () => {
    await cache.close();
    await site.close();
  });

  /** A GET, timed, that must be a 200 carrying this very page. */
  async function visit(path: string) {
    const started = Date.now();
    const answer = await site.send({ path, timeoutMs: 5000 });
    return { path, answer, ms: Date.now() - started };
  }
  return {
    cache,
    site,
    recorder,
    visit,
    renders: (path: string) => renders.get(path) ?? 0,
    /** The phases reported through onError, e.g. ['store']. */
    phases: () => recorder.errors.map((e) => e.context.phase),
    recoveries: () => recorder.warnings.filter((w) => /answering again/.test(String(w[0]))).length,
  };
}

type App = Awaited<ReturnType<typeof startApp>>;
type Visit = Awaited<ReturnType<App['visit']>>;

/** Every visit answered 200 with its own page, within the bound. */
function expectAllAnswered(visits: Visit[]) {
  figures.requestsDuringFaults += visits.length;
  figures.slowest = Math.max(figures.slowest, ...visits.map((v) => v.ms));
  const bad = visits.filter(
    (v) =>
      v.answer.error !== undefined ||
      v.answer.status !== 200 ||
      v.answer.body !== `<!doctype html><p>path=${v.path}</p>` ||
      v.ms >= LATENCY_BOUND_MS,
  );
  expect(bad.map((v) => `${v.path}: ${v.answer.error ?? v.answer.status} in ${v.ms} ms`)).toEqual(
    [],
  );
}

/** Caching works: a page never seen is a MISS, then a HIT (polls past the breaker's pause). */
async function cachingWorks(app: App, label: string): Promise<void> {
  let n = 0;
  await waitFor(
    `caching works again (${label})`,
    async () => {
      n += 1;
      const path = `/page/${label}-${n}`;
      const first = await app.visit(path);
      if (first.answer.headers['x-isr-cache'] !== 'MISS') return false;
      await app.cache.idle();
      const second = await app.visit(path);
      return second.answer.headers['x-isr-cache'] === 'HIT' && app.renders(path) === 1;
    },
    8000,
    50,
  );
}

/** `count` visits, `concurrency` at a time, over cold and warm pages, while `running()`. */
async function load(
  app: App,
  paths: (i: number) => string,
  options: { count?: number; concurrency?: number; running?: () => boolean },
): Promise<Visit[]> {
  const { count = Number.POSITIVE_INFINITY, concurrency = 4, running = () => true } = options;
  const visits: Visit[] = [];
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count && running(); i = next++) visits.push(await app.visit(paths(i)));
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return visits;
}

describe('store faults on a real Redis', () => {
  test('Redis SIGKILLed, then restarted on the same port: answered throughout, caching resumes without restarting the app', async () => {
    const server = await RedisServer.start();
    const app = await startApp({ store: server.url });
    await cachingWorks(app, 'before');
    const warm = await app.visit('/page/warm');
    await app.cache.idle();
    expect((await app.visit('/page/warm')).answer.headers['x-isr-cache']).toBe('HIT');

    await server.kill();
    figures.faults += 1;
    const during = await load(app, (i) => (i % 3 === 0 ? '/page/warm' : `/page/down-${i}`), {
      count: 60,
    });
    expectAllAnswered([warm, ...during]);
    expect(app.phases()).toEqual(['store']);

    await server.restart(); // same port, empty: nothing was persisted
    await cachingWorks(app, 'after');
    expect(app.recoveries()).toBe(1);
    // The lost page is rendered once more and cached again; invalidation works again too.
    await app.visit('/page/warm');
    await app.cache.idle();
    expect((await app.visit('/page/warm')).answer.headers['x-isr-cache']).toBe('HIT');
    await app.cache.revalidateTag('pages');
    expect((await app.visit('/page/warm')).answer.headers['x-isr-cache']).toBe('STALE');
    expect(app.phases()).toEqual(['store']);
  }, 30_000);

  const slowedStores: [string, (url: string, cleanup: typeof cleanups) => IsrOptions['store']][] = [
    ['store: "redis://…"', (url) => url],
    ['a Keyv the app built (offline queue on)', keyvOf],
  ];
  describe.each(slowedStores)('Redis slowed by DEBUG SLEEP 2 (%s)', (_label, store) => {
    test('zero failed requests, each within 1.5 s, one outage report, caching resumes', async () => {
      const flags = await debugFlags();
      const redis = await startRedis(flags);
      const app = await startApp({ store: store(redis.url, cleanups) });
      await cachingWorks(app, 'before');
      await app.visit('/page/warm');
      await app.cache.idle();

      // Redis stops answering for 2 s: DEBUG SLEEP blocks the server itself.
      const command = flags.length > 0 ? ['DEBUG', 'SLEEP', '2'] : ['CLIENT', 'PAUSE', '2000'];
      let asleep = true;
      const sleeping = redisCli(redis.port, ...command).finally(() => {
        asleep = false;
      });
      await waitFor('Redis asleep', async () => !(await pong(redis.port, 100)), 8000, 50);
      figures.faults += 1;
      const during = await load(app, (i) => (i % 4 === 0 ? '/page/warm' : `/page/slow-${i}`), {
        running: () => asleep,
      });
      await sleeping;
      expect(during.length).toBeGreaterThan(10);
      expectAllAnswered(during);
      expect(app.phases()).toEqual(['store']);

      await cachingWorks(app, 'after');
      expect(app.phases()).toEqual(['store']);
      expect(app.recoveries()).toBe(1);
    }, 30_000);
  });

  /**
   * An app on a Redis with `noeviction`, two pages stored, then filled with keys of our own
   * (over a limit just above what it held) until a write fails with OOM, and kept full.
   */
  async function outOfMemory() {
    const redis = await startRedis(['--maxmemory-policy', 'noeviction']);
    // l1: false, so that every read below really goes to Redis.
    const app = await startApp({ store: redis.url, l1: false });
    const stored = ['/page/stored-1', '/page/stored-2'];
    for (const path of stored) await app.visit(path);
    await app.cache.idle();
    for (const path of stored)
      expect((await app.visit(path)).answer.headers['x-isr-cache']).toBe('HIT');

    const admin = createClient({ url: redis.url });
    admin.on('error', () => {});
    await admin.connect();
    cleanups.push(async () => admin.destroy());
    const usedMemory = async () =>
      Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]);
    await admin.configSet('maxmemory', String((await usedMemory()) + 256 * 1024));
    let oom: Error | undefined;
    for (let i = 0; i < 1000 && oom === undefined; i += 1) {
      await admin.set(`filler:${i}`, 'f'.repeat(16 * 1024)).catch((error: Error) => {
        oom = error;
      });
    }
    expect(oom?.message).toMatch(/OOM/);
    // Kept full: memory Redis frees by itself (client buffers) must not let a write in.
    await admin.configSet('maxmemory', String((await usedMemory()) - 128 * 1024));
    await expect(admin.set('probe', 'x')).rejects.toThrow(/OOM/);
    figures.faults += 1;
    return { app, admin, stored };
  }

  test('Redis out of memory (noeviction): every request answered, nothing stored, caching back after CONFIG SET maxmemory 0', async () => {
    const { app, admin, stored } = await outOfMemory();
    const visits: Visit[] = [];
    for (let i = 0; i < 20; i += 1) {
      const path = `/page/oom-${i % 5}`;
      const fresh = await app.visit(path);
      visits.push(fresh);
      // Rendered and answered, but not stored: the next visit renders again.
      expect({ path, state: fresh.answer.headers['x-isr-cache'] }).toEqual({ path, state: 'MISS' });
      await app.cache.idle();
      visits.push(await app.visit(stored[i % 2]));
    }
    expectAllAnswered(visits);
    expect(app.renders('/page/oom-0')).toBe(4);
    // Reported once, as a refused write (the store answers; it is not an outage of reads).
    expect(app.phases()).toEqual(['store-write']);

    await admin.configSet('maxmemory', '0');
    await cachingWorks(app, 'after-oom');
  }, 30_000);

  test('Redis out of memory: pages already stored are still served from it (a refused write is no outage of reads)', async () => {
    const { app, stored } = await outOfMemory();
    for (let i = 0; i < 10; i += 1) {
      const fresh = await app.visit(`/page/oom-${i}`); // its write is refused
      expect(fresh.answer.status).toBe(200);
      await app.cache.idle();
      const old = await app.visit(stored[0]);
      expect(old.answer.status).toBe(200);
      expect({ i, state: old.answer.headers['x-isr-cache'] }).toEqual({ i, state: 'HIT' });
    }
    expect(app.renders(stored[0])).toBe(1);
  }, 30_000);
});

/** What many apps write: `new Keyv(new KeyvRedis(url))`, default options (offline queue on). */
function keyvOf(url: string, cleanup: (() => Promise<unknown>)[]) {
  const adapter = new KeyvRedis(url);
  cleanup.push(() => adapter.disconnect(true));
  return new Keyv({ store: adapter, namespace: 'store-faults', useKeyPrefix: false });
}
