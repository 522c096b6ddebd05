/**
 * The soak driver: `runSoak({ seconds, pages, instances })` starts
 * `instances` app processes (soak-instance.ts) on the Redis at REDIS_URL under a namespace of
 * its own, then for `seconds`:
 * - GETs random pages (`/p/g<group>/<n>`, sometimes with a tracking parameter the key ignores,
 *   sometimes with `?lang=en`, which is part of the key; sometimes asking for br or gzip) on
 *   random instances, and checks EVERY response: status 200, a body carrying exactly the
 *   requested canonical URL (never another page's body), decoded from its Content-Encoding;
 * - bumps content versions and invalidates through the webhook, on a random instance: one
 *   path, one tag (a group of pages) or a layout (a group's prefix), in every mode. After an
 *   `expire` was acknowledged for a page, no request started afterwards may show an older
 *   version (on another instance, after the 100 ms the L1 events are given to arrive: the
 *   bound);
 * - samples each instance's heap (after a full GC) once a second.
 * Then it stops the instances with SIGTERM: each must exit 0 by itself (the fixture does not
 * call process.exit, so a leaked handle keeps it alive and fails this), and deletes its keys.
 *
 * Used by soak.test.ts (SOAK_SECONDS, default 8, in `npm test`) and `npm run soak` (60 s).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import zlib from 'node:zlib';
import { createClient } from '@keyv/redis';
import { sleep } from '../../helpers/time';

export interface SoakOptions {
  seconds: number;
  /** Distinct pages (each also exists with `?lang=en`). */
  pages: number;
  instances: number;
  /** Concurrent GETs. @default 16 */
  concurrency?: number;
  redisUrl?: string;
  /**
   * Goes on past `seconds` until this holds (every kind of answer seen, say), for at most
   * `maxSeconds` in all: on a loaded machine the same load takes longer to cover everything.
   */
  until?: (result: SoakResult) => boolean;
  /** @default seconds */
  maxSeconds?: number;
}

export interface Problem {
  url: string;
  instance: number;
  what: string;
}

export interface SoakResult {
  /** How long the load ran (more than asked when `until` had not held yet). */
  seconds: number;
  requests: number;
  /** Responses by `x-isr-cache`. */
  states: Record<string, number>;
  /** Responses by Content-Encoding. */
  encodings: Record<string, number>;
  invalidations: Record<string, number>;
  versionBumps: number;
  /** Responses whose body was not the requested URL's page (or no page at all). */
  wrongBodies: Problem[];
  /** Responses that were not a 200 (or no response at all). */
  failures: Problem[];
  /** Responses showing a version older than one an acknowledged `expire` had put out. */
  expiredServed: Problem[];
  webhookFailures: string[];
  /** Heap used (bytes, after GC) per instance, one sample a second. */
  heap: number[][];
  /** The heap sample taken once warm-up (the first 30% of the run) was over, per instance. */
  heapAfterWarmUp: number[];
  exits: { code: number | null; signal: string | null }[];
  /** Lines the instances wrote to stderr that say something went wrong. */
  instanceErrors: string[];
}

const FIXTURE = path.join(__dirname, 'soak-instance.ts');
const SECRET = 'soak-webhook-secret-0123456789-abcdef';
const GROUPS = 20;
/** How long an invalidation may take to reach another instance's L1. */
const PROPAGATION_MS = 100;

interface Child {
  index: number;
  port: number;
  process: ChildProcess;
  stderr: string[];
  agent: http.Agent;
}

async function startInstance(index: number, redisUrl: string, namespace: string): Promise<Child> {
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', FIXTURE], {
    cwd: path.join(__dirname, '..', '..', '..'),
    env: {
      ...process.env,
      REDIS_URL: redisUrl,
      ISR_NAMESPACE: namespace,
      ISR_SECRET: SECRET,
      DEBUG: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  let partial = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop() ?? '';
    stderr.push(...lines);
  });
  const port = await new Promise<number>((resolve, reject) => {
    let stdout = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`soak instance ${index} not ready after 20 s: ${stderr.join('\n')}`));
    }, 20_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const ready = /READY (\d+)/.exec(stdout);
      if (ready) {
        clearTimeout(timer);
        resolve(Number(ready[1]));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(
        new Error(`soak instance ${index} exited (${code}) before READY: ${stderr.join('\n')}`),
      );
    });
  });
  child.stdout?.resume();
  return {
    index,
    port,
    process: child,
    stderr,
    agent: new http.Agent({ keepAlive: true, maxSockets: 32 }),
  };
}

/** SIGTERM; SIGKILL after `graceMs` if it has not exited by itself. */
function stop(
  child: Child,
  graceMs: number,
): Promise<{ code: number | null; signal: string | null }> {
  const p = child.process;
  child.agent.destroy();
  if (p.exitCode !== null || p.signalCode !== null) {
    return Promise.resolve({ code: p.exitCode, signal: p.signalCode });
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
    p.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
    p.kill('SIGTERM');
  });
}

interface Answer {
  status: number;
  state: string;
  encoding: string;
  body: string;
}

function get(child: Child, url: string, acceptEncoding?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: child.port,
        path: url,
        agent: child.agent,
        headers: acceptEncoding ? { 'accept-encoding': acceptEncoding } : {},
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          const encoding = String(res.headers['content-encoding'] ?? 'identity');
          let body: string;
          try {
            body = (
              encoding === 'br'
                ? zlib.brotliDecompressSync(raw)
                : encoding === 'gzip'
                  ? zlib.gunzipSync(raw)
                  : raw
            ).toString('utf8');
          } catch (error) {
            body = `<undecodable ${encoding}: ${(error as Error).message}>`;
          }
          resolve({
            status: res.statusCode ?? 0,
            state: String(res.headers['x-isr-cache'] ?? ''),
            encoding,
            body,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end();
  });
}

function postJson(
  child: Child,
  url: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port: child.port,
        path: url,
        method: 'POST',
        agent: child.agent,
        headers: {
          authorization: `Bearer ${SECRET}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        },
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(payload);
  });
}

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const { seconds, pages, instances: count, concurrency = 16 } = options;
  const redisUrl = options.redisUrl ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
  const namespace = `express-isr-test:soak:${randomBytes(4).toString('hex')}`;
  const versionsKey = `${namespace}:versions`;
  const redis = createClient({ url: redisUrl, socket: { connectTimeout: 2000 } });
  redis.on('error', () => {});
  await redis.connect();

  const pathOf = (i: number) => `/p/g${i % GROUPS}/${i}`;
  const pagesOfGroup = (g: number) =>
    Array.from({ length: Math.ceil(pages / GROUPS) }, (_, k) => g + k * GROUPS).filter(
      (i) => i < pages,
    );

  const result: SoakResult = {
    seconds,
    requests: 0,
    states: {},
    encodings: {},
    invalidations: {},
    versionBumps: 0,
    wrongBodies: [],
    failures: [],
    expiredServed: [],
    webhookFailures: [],
    heap: [],
    heapAfterWarmUp: [],
    exits: [],
    instanceErrors: [],
  };
  /** Per path: versions an acknowledged `expire` put out, with when and on which instance. */
  const floors = new Map<string, { version: number; at: number; instance: number }[]>();

  const children: Child[] = [];
  try {
    for (let i = 0; i < count; i += 1) children.push(await startInstance(i, redisUrl, namespace));
    result.heap = children.map(() => []);
    const started = Date.now();
    const deadline = started + seconds * 1000;
    const hardDeadline = started + Math.max(seconds, options.maxSeconds ?? seconds) * 1000;
    const warmUpEnds = started + seconds * 300;
    const covered = options.until ?? (() => true);
    const running = () => Date.now() < deadline || (Date.now() < hardDeadline && !covered(result));

    const check = (child: Child, requested: string, path: string, startedAt: number, a: Answer) => {
      result.requests += 1;
      result.states[a.state] = (result.states[a.state] ?? 0) + 1;
      result.encodings[a.encoding] = (result.encodings[a.encoding] ?? 0) + 1;
      const expectedUrl = requested.includes('lang=en') ? `${path}?lang=en` : path;
      if (a.status !== 200) {
        result.failures.push({ url: requested, instance: child.index, what: `status ${a.status}` });
        return;
      }
      const page = /<main data-url="([^"]*)" data-version="(\d+)">/.exec(a.body);
      if (page === null || page[1] !== expectedUrl) {
        result.wrongBodies.push({
          url: requested,
          instance: child.index,
          what: `got ${page === null ? a.body.slice(0, 120) : page[1]} (${a.state}, ${a.encoding})`,
        });
        return;
      }
      const version = Number(page[2]);
      for (const floor of floors.get(path) ?? []) {
        const from = floor.instance === child.index ? floor.at : floor.at + PROPAGATION_MS;
        if (startedAt >= from && version < floor.version) {
          result.expiredServed.push({
            url: requested,
            instance: child.index,
            what: `version ${version} (${a.state}) ${startedAt - floor.at} ms after an expire to version ${floor.version} was acknowledged by instance ${floor.instance}`,
          });
          break;
        }
      }
    };

    const visitor = async () => {
      while (running()) {
        const i = Math.floor(Math.random() * pages);
        const path = pathOf(i);
        const roll = Math.random();
        const requested =
          roll < 0.1
            ? `${path}?utm_source=soak&utm_medium=${i}`
            : roll < 0.25
              ? `${path}?lang=en`
              : roll < 0.3
                ? `${path}?utm_campaign=x&lang=en`
                : path;
        const encoding = Math.random() < 0.3 ? (Math.random() < 0.5 ? 'br' : 'gzip') : undefined;
        const child = children[Math.floor(Math.random() * children.length)];
        const startedAt = Date.now();
        try {
          check(child, requested, path, startedAt, await get(child, requested, encoding));
        } catch (error) {
          result.requests += 1;
          result.failures.push({
            url: requested,
            instance: child.index,
            what: (error as Error).message,
          });
        }
      }
    };

    const invalidator = async () => {
      const modes = ['stale', 'expire', 'regenerate'] as const;
      while (running()) {
        await sleep(20 + Math.random() * 60);
        const mode = modes[Math.floor(Math.random() * modes.length)];
        const child = children[Math.floor(Math.random() * children.length)];
        const kind = Math.random();
        let targets: number[];
        let body: Record<string, unknown>;
        let label: string;
        if (kind < 0.7) {
          const i = Math.floor(Math.random() * pages);
          targets = [i];
          body = { path: pathOf(i), mode };
          label = `path/${mode}`;
        } else {
          const g = Math.floor(Math.random() * GROUPS);
          targets = pagesOfGroup(g);
          body = kind < 0.85 ? { tag: `g${g}`, mode } : { path: `/p/g${g}`, type: 'layout', mode };
          label = `${kind < 0.85 ? 'tag' : 'layout'}/${mode}`;
        }
        // New content first, then the invalidation: what a CMS does.
        const multi = redis.multi();
        for (const i of targets) multi.hIncrBy(versionsKey, pathOf(i), 1);
        const versions = (await multi.exec()) as unknown as number[];
        result.versionBumps += targets.length;
        try {
          const answer = await postJson(child, '/api/revalidate', body);
          if (answer.status !== 200) {
            result.webhookFailures.push(`${label}: ${answer.status} ${answer.text}`);
            continue;
          }
          result.invalidations[label] = (result.invalidations[label] ?? 0) + 1;
          if (mode === 'expire') {
            const at = Date.now();
            targets.forEach((i, k) => {
              const list = floors.get(pathOf(i)) ?? [];
              list.push({ version: Number(versions[k]), at, instance: child.index });
              floors.set(pathOf(i), list);
            });
          }
        } catch (error) {
          result.webhookFailures.push(`${label}: ${(error as Error).message}`);
        }
      }
    };

    const heapSampler = async () => {
      let warmedUp = false;
      while (running()) {
        await sleep(1000);
        const samples = await Promise.all(
          children.map(async (child) => {
            const answer = await get(child, '/__heap');
            return Number(JSON.parse(answer.body).heapUsed);
          }),
        );
        samples.forEach((sample, i) => {
          result.heap[i].push(sample);
        });
        if (!warmedUp && Date.now() >= warmUpEnds) {
          warmedUp = true;
          result.heapAfterWarmUp = samples;
        }
      }
    };

    await Promise.all([
      ...Array.from({ length: concurrency }, visitor),
      invalidator(),
      heapSampler(),
    ]);
    result.seconds = Math.round((Date.now() - started) / 100) / 10;
    // One last sample, after the load.
    const last = await Promise.all(
      children.map(async (child) =>
        Number(JSON.parse((await get(child, '/__heap')).body).heapUsed),
      ),
    );
    last.forEach((sample, i) => {
      result.heap[i].push(sample);
    });
    if (result.heapAfterWarmUp.length === 0) result.heapAfterWarmUp = result.heap.map((h) => h[0]);
  } finally {
    result.exits = await Promise.all(children.map((child) => stop(child, 10_000)));
    for (const child of children) {
      result.instanceErrors.push(
        ...child.stderr
          .filter((line) => line.trim() !== '' && line !== 'CLOSED')
          .map((line) => `instance ${child.index}: ${line}`),
      );
    }
    const keys: string[] = [];
    for await (const batch of redis.scanIterator({ MATCH: `${namespace}:*`, COUNT: 1000 })) {
      keys.push(...batch);
    }
    for (let at = 0; at < keys.length; at += 1000) await redis.del(keys.slice(at, at + 1000));
    redis.destroy();
  }
  return result;
}

/** The figures, for people. */
export function describeSoak(r: SoakResult): string {
  const mb = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;
  const invalidations = Object.values(r.invalidations).reduce((a, b) => a + b, 0);
  return [
    `soak: ${r.seconds} s, ${r.requests} requests (${Math.round(r.requests / r.seconds)}/s) on ${r.exits.length} instances`,
    `  states ${JSON.stringify(r.states)}, encodings ${JSON.stringify(r.encodings)}`,
    `  ${invalidations} invalidations ${JSON.stringify(r.invalidations)}, ${r.versionBumps} version bumps`,
    `  wrong bodies: ${r.wrongBodies.length}, failed requests: ${r.failures.length}, expired versions served: ${r.expiredServed.length}, webhook failures: ${r.webhookFailures.length}`,
    `  heap per instance (after warm-up → last): ${r.heapAfterWarmUp.map((h, i) => `${mb(h)} → ${mb(r.heap[i].at(-1) ?? 0)}`).join(', ')}`,
    `  exits: ${JSON.stringify(r.exits)}`,
    ...[...r.failures, ...r.wrongBodies, ...r.expiredServed]
      .slice(0, 10)
      .map((p) => `  ! ${p.url} on instance ${p.instance}: ${p.what}`),
    ...r.webhookFailures.slice(0, 5).map((line) => `  ! webhook ${line}`),
  ].join('\n');
}
