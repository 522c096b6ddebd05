/**
 * The README's shutdown examples, run as written in processes of their own: each serves a
 * page (MISS, then HIT), gets SIGTERM while a slow request is in flight, answers that request,
 * and then EXITS BY ITSELF, code 0, within BOUND_MS, with no process.exit anywhere:
 *   - "## Shutting down" with a Keyv of the user's own over @keyv/redis (its
 *     `await keyv.disconnect()` after `await cache.close()`),
 *   - the same example with the `keyv` lines left out, as its text says, with
 *     `store: process.env.REDIS_URL` (closed by `cache.close()`) and with `isr()` (memory),
 *   - the node:cluster example (a URL store in each worker), signalled as `kill <primary>`.
 * And the counter-proof: the first example without its `keyv.disconnect()` line does NOT exit
 * (the user's Redis connection keeps it alive, which its own report names).
 *
 * Each Redis test works under keys of its own (a unique Keyv namespace, or a random marker in
 * the page paths for the `express-isr` namespace a URL store uses) and deletes only those.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { createClient } from '@keyv/redis';
import { readmeScript } from '../helpers/readme-example';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { sleep } from '../helpers/time';

/** How long a process may take to exit after SIGTERM (the slow request's SLOW_MS included). */
const BOUND_MS = 5000;
/** How long the slow page takes: SIGTERM arrives while it is in flight. */
const SLOW_MS = 1500;

const SHUTTING_DOWN = '## Shutting down';
const CLUSTER = '**node:cluster example.**';
const ROOT = path.join(__dirname, '..', '..');

/**
 * What the test puts where the README says `// ... routes ...`: any page, answered with the
 * pid that rendered it; a path ending in `-slow` takes SLOW_MS.
 */
const ROUTES = `app.get('/:page', (req, res) => {
  const page = req.params.page;
  setTimeout(() => res.send(\`<p>\${page} rendered by \${process.pid}</p>\`), page.endsWith('-slow') ? ${SLOW_MS} : 0);
});`;

const PRELUDE = `import ${JSON.stringify(path.join(__dirname, '..', 'fixtures', 'report-handles'))};\n`;

function newClient() {
  const client = createClient({
    url: REDIS_URL,
    socket: { connectTimeout: 2000, reconnectStrategy: false },
  });
  client.on('error', () => {});
  return client;
}
let redis: ReturnType<typeof newClient>;

beforeAll(async () => {
  redis = newClient();
  await redis.connect();
});

afterAll(async () => {
  if (redis?.isOpen) redis.destroy();
});

/** Run after each test, most recent first, even when it failed. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function deleteMatching(pattern: string): Promise<void> {
  const keys: string[] = [];
  for await (const batch of redis.scanIterator({ MATCH: pattern, COUNT: 1000 })) {
    keys.push(...batch);
  }
  if (keys.length > 0) await redis.del(keys);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** A README script in a process of its own; SIGKILLed after the test if it is still alive. */
function run(file: string) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', file], {
    cwd: ROOT,
    env: { ...process.env, REDIS_URL },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.on('data', (chunk) => {
    stderr += chunk;
  });
  let exit: Exit | undefined;
  const exited = new Promise<Exit>((resolve) =>
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      resolve(exit);
    }),
  );
  cleanups.push(async () => {
    if (exit === undefined) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return {
    child,
    stderr: () => stderr,
    /** How it ended, or 'still running' if it has not within `ms`. */
    exitWithin: async (ms: number): Promise<Exit | 'still running'> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<'still running'>((resolve) => {
        timer = setTimeout(() => resolve('still running'), ms);
      });
      try {
        return await Promise.race([exited, late]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** One request on a connection of its own (no keep-alive to hold the server open). */
function get(
  port: number,
  urlPath: string,
): Promise<{ status: number; state: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, state: String(res.headers['x-isr-cache']), body }),
        );
      })
      .on('error', reject);
  });
}

async function waitForPort(port: number, running: { exitWithin(ms: number): Promise<unknown> }) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    if ((await running.exitWithin(0)) !== 'still running') throw new Error('the script exited');
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port} after 15 s`);
    await sleep(100);
  }
}

/**
 * Starts the script, serves `/<marker>` (MISS, then HIT once stored), sends SIGTERM while
 * `/<marker>-slow` is in flight, and returns that request's answer, the pids that rendered the
 * pages, and how the process ended within BOUND_MS.
 */
async function serveThenTerminate(file: string, port: number, marker: string) {
  const running = run(file);
  await waitForPort(port, running);
  const states: string[] = [];
  const pids = new Set<string>();
  const deadline = Date.now() + 5000;
  do {
    const res = await get(port, `/${marker}`);
    expect(res.status).toBe(200);
    states.push(res.state);
    pids.add(/rendered by (\d+)/.exec(res.body)?.[1] ?? '?');
    if (res.state !== 'HIT') await sleep(50);
  } while (states.at(-1) !== 'HIT' && Date.now() < deadline);
  // The first is a MISS; then a HIT (maybe after one that came before the page was stored).
  expect([states[0], states.at(-1)]).toEqual(['MISS', 'HIT']);

  const slow = get(port, `/${marker}-slow`);
  await sleep(300); // the slow page is being rendered
  running.child.kill('SIGTERM');
  const signalledAt = Date.now();
  // A request cut off by the shutdown (the connection dropped) shows as status 0.
  const inFlight = await slow.catch((error: Error) => ({
    status: 0,
    state: `cut off: ${error.message}`,
    body: '',
  }));
  // BOUND_MS counts from the signal, the in-flight request's time included.
  const exit = await running.exitWithin(signalledAt + BOUND_MS - Date.now());
  return {
    inFlight,
    exit,
    pids: [...pids, /rendered by (\d+)/.exec(inFlight.body)?.[1] ?? '?'],
    stderr: running.stderr,
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('README, "Shutting down": the process exits by itself after SIGTERM', () => {
  test("a Keyv of the user's own over @keyv/redis, with its keyv.disconnect()", async () => {
    const ns = uniqueNamespace('shutdown-keyv');
    cleanups.push(() => deleteMatching(`${ns}*`));
    const port = await freePort();
    const script = readmeScript(
      SHUTTING_DOWN,
      [
        ["namespace: 'isr'", `namespace: ${JSON.stringify(ns)}`],
        ['// ... routes ...', ROUTES],
        ['app.listen(3000)', `app.listen(${port})`],
      ],
      { prelude: PRELUDE },
    );
    cleanups.push(script.remove);
    expect(script.source).toContain('await keyv.disconnect();');

    const { inFlight, exit, stderr } = await serveThenTerminate(script.file, port, 'page');
    expect(inFlight).toMatchObject({ status: 200, state: 'MISS' });
    expect(inFlight.body).toMatch(/^<p>page-slow rendered by/);
    expect({ exit, stderr: exit === 'still running' ? stderr() : '' }).toEqual({
      exit: { code: 0, signal: null },
      stderr: '',
    });
    // cache.close() waited for the in-flight page's write before the user's store was closed.
    expect(await redis.exists(`${ns}::/page-slow`)).toBe(1);
  }, 30_000);

  test('the same without its `await keyv.disconnect()` line does NOT exit: the Redis connection keeps it alive', async () => {
    const ns = uniqueNamespace('shutdown-keyv-open');
    cleanups.push(() => deleteMatching(`${ns}*`));
    const port = await freePort();
    const script = readmeScript(
      SHUTTING_DOWN,
      [
        ["namespace: 'isr'", `namespace: ${JSON.stringify(ns)}`],
        ['// ... routes ...', ROUTES],
        ['app.listen(3000)', `app.listen(${port})`],
        ['    await keyv.disconnect();\n', ''],
      ],
      { prelude: PRELUDE },
    );
    cleanups.push(script.remove);
    expect(script.source).not.toContain('disconnect');

    const { inFlight, exit, stderr } = await serveThenTerminate(script.file, port, 'page');
    expect(inFlight.status).toBe(200);
    expect(exit).toBe('still running');
    // What keeps it alive, as the process reports it (fixtures/report-handles.ts): a socket
    // to Redis, and nothing else of the cache's or the server's.
    const report = /still alive after SIGTERM: (.*)/.exec(stderr())?.[1];
    expect(report).toBeDefined();
    const { handles } = JSON.parse(report!) as { handles: string[] };
    const redisPort = new URL(REDIS_URL).port || '6379';
    expect(handles.filter((h) => h !== 'stdout' && h !== 'stderr')).toEqual([
      `Socket to ${redisPort}`,
    ]);
  }, 30_000);

  test.each([
    ['a store made from a URL (closed by cache.close())', 'process.env.REDIS_URL'],
    ['the default memory store', ''],
  ])(
    '%s: the keyv lines left out, as the README says',
    async (_label, store) => {
      // A URL store's namespace is express-isr: this test's keys carry a marker of its own.
      const marker = uniqueNamespace('shutdown').split(':').at(-1)!;
      cleanups.push(() => deleteMatching(`*${marker}*`));
      const port = await freePort();
      const script = readmeScript(
        SHUTTING_DOWN,
        [
          ['isr({ store: keyv })', store === '' ? 'isr()' : `isr({ store: ${store} })`],
          ['// ... routes ...', ROUTES],
          ['app.listen(3000)', `app.listen(${port})`],
        ],
        { prelude: PRELUDE, dropLines: /keyv/i },
      );
      cleanups.push(script.remove);
      expect(script.source).not.toMatch(/keyv/i);
      expect(script.source).toContain('await cache.close();');

      const { inFlight, exit, stderr } = await serveThenTerminate(script.file, port, marker);
      expect(inFlight).toMatchObject({ status: 200, state: 'MISS' });
      expect({ exit, stderr: exit === 'still running' ? stderr() : '' }).toEqual({
        exit: { code: 0, signal: null },
        stderr: '',
      });
      if (store !== '') expect(await redis.exists(`express-isr::/${marker}-slow`)).toBe(1);
    },
    30_000,
  );
});

describe('README, node:cluster example', () => {
  test('kill <primary>: every worker answers what it has in flight, closes, and exits; then the primary exits by itself', async () => {
    const marker = uniqueNamespace('shutdown-cluster').split(':').at(-1)!;
    cleanups.push(() => deleteMatching(`*${marker}*`));
    const port = await freePort();
    const script = readmeScript(
      CLUSTER,
      [
        ['availableParallelism()', '2'],
        ['// ... routes, revalidateRouter ...', ROUTES],
        ['app.listen(3000)', `app.listen(${port})`],
      ],
      { prelude: PRELUDE },
    );
    cleanups.push(script.remove);

    const { inFlight, exit, pids, stderr } = await serveThenTerminate(script.file, port, marker);
    expect(inFlight).toMatchObject({ status: 200, state: 'MISS' });
    expect({ exit, stderr: exit === 'still running' ? stderr() : '' }).toEqual({
      exit: { code: 0, signal: null },
      stderr: '',
    });
    // The workers that rendered the pages are gone too (the primary waited for them).
    expect(pids.filter((pid) => alive(Number(pid)))).toEqual([]);
    expect(await redis.exists(`express-isr::/${marker}-slow`)).toBe(1);
  }, 40_000);
});
