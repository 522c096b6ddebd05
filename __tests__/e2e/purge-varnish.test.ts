/**
 * `varnishPurge` against a real Varnish (Debian's `varnish` with `varnish-modules`' xkey,
 * installed by .ci/run): a `varnishd` of the test's own on a free loopback port, with the VCL
 * of the README's recipe, in front of an Express app with `isr({ cdnTags: 'xkey' })`. A page
 * is cached by Varnish; a webhook by tag (or path) purges it there: `expire` hard (the next
 * request goes to the origin), `stale` soft (`xkey.softpurge`: Varnish answers once from
 * grace with the old page while it refetches, then serves the new one).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express, { type Request, type Response } from 'express';
import { isr, revalidateRouter } from '../../lib';
import { varnishPurge } from '../../lib/purge';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import type { Answer } from '../helpers/http';
import { sleep } from '../helpers/time';

const SECRET = 'a-webhook-secret-long-enough-0123456789';
const VARNISHD = '/usr/sbin/varnishd';

const cleanups = cleanupsAfterEach();

/** The README's VCL (Purging a CDN in front), with the test app as its backend. */
function vcl(backendPort: number): string {
  const readme = readFileSync(join(__dirname, '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Purging a CDN in front'));
  const block = /```vcl\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined || !block.includes('.port = "3000";'))
    throw new Error('README: no VCL with a backend on port 3000 under "Purging a CDN in front"');
  return block.replace('.port = "3000";', `.port = "${backendPort}";`);
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Starts a varnishd in the foreground (-F), a child process killed after the test. */
async function startVarnish(backendPort: number): Promise<{ port: number; logs: () => string }> {
  const dir = mkdtempSync(join(tmpdir(), 'isr-varnish-'));
  const vclFile = join(dir, 'test.vcl');
  writeFileSync(vclFile, vcl(backendPort));
  const port = await freePort();
  let output = '';
  const child: ChildProcess = spawn(
    VARNISHD,
    [
      '-F',
      '-n',
      join(dir, 'work'),
      '-a',
      `127.0.0.1:${port}`,
      '-f',
      vclFile,
      '-s',
      'malloc,16m',
      '-T',
      'none',
      // As root, varnishd would switch to its own users, which cannot read the temp dir.
      '-j',
      'none',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (chunk) => {
    output += chunk;
  });
  child.stderr?.on('data', (chunk) => {
    output += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  cleanups.push(async () => {
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  for (let i = 0; i < 200; i += 1) {
    if (child.exitCode !== null) break;
    if (await answers(port)) return { port, logs: () => output };
    await sleep(50);
  }
  throw new Error(`varnishd did not start on 127.0.0.1:${port}:\n${output}`);
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function get(port: number, path: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function post(port: number, path: string, body: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = JSON.stringify(body);
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path,
        method: 'POST',
        agent: false,
        headers: {
          authorization: `Bearer ${SECRET}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(text),
        },
      },
      (res) => {
        let answer = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          answer += chunk;
        });
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: answer }),
        );
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** Varnish's own request id, then the cached object's for a hit (`X-Varnish: 32770 3`). */
const servedByVarnish = (reply: Answer) =>
  String(reply.headers['x-varnish']).split(' ').length === 2;

async function setup() {
  if (!isExecutable(VARNISHD)) {
    throw new Error(
      `${VARNISHD} is missing: install Debian's varnish and varnish-modules (.ci/run does)`,
    );
  }
  const recorder = errorRecorder();
  const origin = { requests: 0 };
  const renders = new Map<string, number>();
  const app = express();
  app.use((req, _res, next) => {
    // Varnish's fetches only (it sends X-Varnish), not the cache's own identity render.
    if (req.method === 'GET' && req.headers['x-varnish'] !== undefined) origin.requests += 1;
    next();
  });
  // The purger needs Varnish's port, known once it runs: a late-bound hook.
  let purge: ReturnType<typeof varnishPurge> | undefined;
  const cache = isr({
    cdnTags: 'xkey',
    onRevalidate: (event) => purge?.(event),
    onError: recorder.onError,
    logger: recorder.logger,
  });
  cleanups.push(() => cache.close());
  app.use(cache);
  app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
  app.get('/posts/:id', (req: Request, res: Response) => {
    const n = (renders.get(req.path) ?? 0) + 1;
    renders.set(req.path, n);
    res.isr({ tags: ['posts', `post-${req.params.id}`] });
    res.send(`<h1>${req.path} render ${n}</h1>`);
  });
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const appPort = (server.address() as AddressInfo).port;
  const varnish = await startVarnish(appPort);
  purge = varnishPurge({ url: `http://127.0.0.1:${varnish.port}`, backoff: 20 });
  return {
    cache,
    recorder,
    origin,
    varnish: (path: string) => get(varnish.port, path),
    webhook: (body: unknown) => post(appPort, '/api/revalidate', body),
    logs: varnish.logs,
  };
}

function isExecutable(file: string): boolean {
  try {
    execFileSync(file, ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Caches /posts/1 in Varnish: a MISS from the origin, then a hit Varnish answers alone. */
async function cachedInVarnish(s: Awaited<ReturnType<typeof setup>>) {
  const first = await s.varnish('/posts/1');
  expect([first.status, first.body, first.headers['x-isr-cache']]).toEqual([
    200,
    '<h1>/posts/1 render 1</h1>',
    'MISS',
  ]);
  expect(first.headers.xkey).toBe(
    'page:/posts/1 layout:/ layout:/posts layout:/posts/1 posts post-1',
  );
  expect(servedByVarnish(first)).toBe(false);
  await s.cache.idle();
  const second = await s.varnish('/posts/1');
  expect([second.body, servedByVarnish(second), s.origin.requests]).toEqual([
    '<h1>/posts/1 render 1</h1>',
    true,
    1,
  ]);
}

describe('varnishPurge in front of a real Varnish with xkey', () => {
  test('expire by tag: a hard purge, the next request goes to the origin and gets the new page', async () => {
    const s = await setup();
    await cachedInVarnish(s);
    const answer = await s.webhook({ tag: 'posts', mode: 'expire' });
    expect(answer.status).toBe(200);
    await s.cache.idle(); // the purge runs after the answer, in the background
    const after = await s.varnish('/posts/1');
    expect([after.body, servedByVarnish(after), s.origin.requests]).toEqual([
      '<h1>/posts/1 render 2</h1>',
      false,
      2,
    ]);
    await s.cache.idle();
    const again = await s.varnish('/posts/1');
    expect([again.body, servedByVarnish(again), s.origin.requests]).toEqual([
      '<h1>/posts/1 render 2</h1>',
      true,
      2,
    ]);
    expect(s.recorder.errors).toEqual([]);
  });

  test('stale by tag: xkey.softpurge, Varnish answers once from grace while it refetches, then the new page', async () => {
    const s = await setup();
    await cachedInVarnish(s);
    expect((await s.webhook({ tag: 'posts', mode: 'stale' })).status).toBe(200);
    await s.cache.idle();
    // Soft: the object is kept for grace (the cache's stale-while-revalidate), so Varnish
    // answers at once with the old page and fetches from the origin in the background.
    const graced = await s.varnish('/posts/1');
    expect([graced.body, servedByVarnish(graced)]).toEqual(['<h1>/posts/1 render 1</h1>', true]);
    // The origin, stale too, answers that fetch with its old page (STALE, s-maxage=0) and
    // re-renders; Varnish refetches until it has the new one.
    let latest = graced;
    for (let i = 0; i < 100 && latest.body !== '<h1>/posts/1 render 2</h1>'; i += 1) {
      await sleep(50);
      latest = await s.varnish('/posts/1');
    }
    expect(latest.body).toBe('<h1>/posts/1 render 2</h1>');
    expect(s.origin.requests).toBeGreaterThanOrEqual(2);
    expect(s.recorder.errors).toEqual([]);
  });

  test('expire by path: the page key reaches every spelling and query variant Varnish holds', async () => {
    const s = await setup();
    await cachedInVarnish(s);
    const variant = await s.varnish('/Posts/1/?ref=x');
    expect(variant.body).toBe('<h1>/Posts/1/ render 1</h1>');
    await s.cache.idle();
    expect(servedByVarnish(await s.varnish('/Posts/1/?ref=x'))).toBe(true);
    const other = await s.varnish('/posts/2');
    await s.cache.idle();
    expect(servedByVarnish(await s.varnish('/posts/2'))).toBe(true);

    expect((await s.webhook({ path: '/posts/1', mode: 'expire' })).status).toBe(200);
    await s.cache.idle();
    expect(servedByVarnish(await s.varnish('/posts/1'))).toBe(false);
    expect(servedByVarnish(await s.varnish('/Posts/1/?ref=x'))).toBe(false);
    // Another page keeps its copy.
    const kept = await s.varnish('/posts/2');
    expect([kept.body, servedByVarnish(kept)]).toEqual([other.body, true]);
  });

  test('expire by layout: the layout key reaches every page below the path, query variants too', async () => {
    const s = await setup();
    await cachedInVarnish(s);
    await s.varnish('/posts/2?ref=x');
    await s.cache.idle();
    expect(servedByVarnish(await s.varnish('/posts/2?ref=x'))).toBe(true);

    expect((await s.webhook({ path: '/posts', type: 'layout', mode: 'expire' })).status).toBe(200);
    await s.cache.idle();
    expect(servedByVarnish(await s.varnish('/posts/1'))).toBe(false);
    expect(servedByVarnish(await s.varnish('/posts/2?ref=x'))).toBe(false);
    expect(s.recorder.errors).toEqual([]);
  });

  test('a Varnish that cannot be reached: a PurgeError after the retries, in onError (phase on-revalidate)', async () => {
    const recorder = errorRecorder();
    const cache = isr({
      cdnTags: 'xkey',
      onRevalidate: varnishPurge({
        url: `http://127.0.0.1:${await freePort()}`,
        attempts: 2,
        backoff: 1,
      }),
      onError: recorder.onError,
      logger: recorder.logger,
    });
    cleanups.push(() => cache.close());
    await cache.revalidateTag('posts', { mode: 'expire' });
    await cache.idle();
    expect(recorder.errors).toEqual([
      {
        error: expect.objectContaining({
          name: 'PurgeError',
          failures: [
            expect.objectContaining({
              target: expect.stringMatching(/^hard xkey posts at /),
              attempts: 2,
            }),
          ],
        }),
        context: { phase: 'on-revalidate' },
      },
    ]);
  });
});
