// close(): waits for the regeneration in flight (its page is stored by the time close
// resolves), starts no new one afterwards, and leaves nothing that keeps the process alive.
import { spawn } from 'node:child_process';
import path from 'node:path';
import request from 'supertest';
import { isRegeneration, isr } from '../../lib';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { fakeClock, sleep } from '../helpers/time';

describe.each(expressVersions)('close() (%s)', (_name, createApp) => {
  function setup() {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    const app = createApp();
    const regenerationMayFinish = deferred();
    let renders = 0;
    let regenerations = 0;
    app.use(cache);
    app.get('/page', async (req, res) => {
      renders += 1;
      const version = renders;
      // The first render (the MISS's shared render, a request of the cache's own too) is not
      // held: only the regenerations after it.
      if (isRegeneration(req) && renders > 1) {
        regenerations += 1;
        await regenerationMayFinish.promise;
      }
      res.send(`<h1>version ${version}</h1>`);
    });
    return {
      app,
      cache,
      clock,
      regenerationMayFinish,
      renders: () => renders,
      regenerations: () => regenerations,
    };
  }

  test('waits for the regeneration in flight: the new page is stored by the time it resolves', async () => {
    const { app, cache, clock, regenerationMayFinish, regenerations } = setup();
    await request(app).get('/page');
    await cache.idle();
    clock.advanceSeconds(11);
    const stale = await request(app).get('/page');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(regenerations()).toBe(1);

    let closed = false;
    const closing = cache.close().then(() => {
      closed = true;
    });
    await sleep(20);
    expect(closed).toBe(false);

    regenerationMayFinish.resolve();
    await closing;
    expect(closed).toBe(true);

    // What close() waited for was stored: the page is the regenerated one.
    const after = await request(app).get('/page');
    expect(after.headers['x-isr-cache']).toBe('HIT');
    expect(after.text).toBe('<h1>version 2</h1>');
  });

  test('after close, a stale page starts no regeneration', async () => {
    const { app, cache, clock, regenerationMayFinish, regenerations } = setup();
    regenerationMayFinish.resolve();
    await request(app).get('/page');
    await cache.idle();
    await cache.close();

    clock.advanceSeconds(11);
    const res = await request(app).get('/page');
    expect(res.status).toBe(200);
    await sleep(20);
    await cache.idle();
    expect(regenerations()).toBe(0);
  });

  test('close() with nothing in flight resolves, and can be called twice', async () => {
    const { app, cache } = setup();
    await request(app).get('/page');
    await expect(cache.close()).resolves.toBeUndefined();
    await expect(cache.close()).resolves.toBeUndefined();
  });
});

/** Runs a fixture in a process of its own; resolves with how it ended and what it printed. */
async function runFixture(name: string) {
  const script = path.join(__dirname, '..', 'fixtures', name);
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: path.join(__dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  // A process kept alive by a leaked timer or socket never exits: kill it after a while,
  // which the caller's assertions then report as a failure.
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
    child.once('exit', (c, s) => resolve([c, s])),
  );
  clearTimeout(killer);
  // stderr is shown only when the exit was not clean: it says why.
  return { code, signal, stderr: code === 0 ? '' : stderr, stdout };
}

test('close() is bounded even while an onRevalidate (a CDN purge retrying) never settles', async () => {
  const cache = isr({
    regenerateTimeout: 200,
    onRevalidate: () => new Promise<void>(() => {}), // a CDN that never answers
  });
  await cache.revalidateTag('posts');
  let closed = false;
  const closing = cache.close().then(() => {
    closed = true;
  });
  // regenerateTimeout plus a second is the bound the README gives; waited for with margin.
  await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 3000))]);
  expect(closed).toBe(true);
});

describe('a process that used a cache', () => {
  test('with Redis and L1, exits by itself once its server and its own store are closed, even without cache.close()', async () => {
    const { stdout, ...exit } = await runFixture('redis-store-exit.ts');
    expect(exit).toEqual({ code: 0, signal: null, stderr: '' });
    expect(JSON.parse(stdout.trim())).toEqual(['MISS', 'HIT']);
  });

  test('exits by itself once the server and the cache are closed', async () => {
    const { stdout, ...exit } = await runFixture('serve-and-exit.ts');
    expect(exit).toEqual({ code: 0, signal: null, stderr: '' });
    expect(JSON.parse(stdout.trim())).toEqual([
      'MISS',
      'HIT',
      'STALE',
      'HIT',
      '<h1>version 2</h1>',
    ]);
  });
});
