/**
 * A cold herd through the fast path: behind `cache.handler(app)`, requests
 * for a page that is being rendered wait for that render in front of the app — the app (and
 * its routing) sees one request, not the herd — and get the rendered page as a collapsed MISS.
 * When the render cannot be shared, or takes longer than `regenerateTimeout`, the waiters are
 * handed to the app and rendered for themselves: nobody is lost and nobody waits twice.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type IsrMiddleware, type IsrOptions, isRegeneration, isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { sleep, waitFor } from '../helpers/time';

interface Reply {
  status: number;
  body: string;
  state: string | undefined;
  cacheStatus: string | undefined;
}

describe.each(expressVersions)('a cold herd behind cache.handler(app) (%s)', (_name, createApp) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /**
   * `/cold`: the first render waits for `release()` and answers `firstStatus`; later renders
   * answer at once. `seen` counts the visitors' requests that reached the app.
   */
  async function setup(options: IsrOptions & { firstStatus?: number } = {}) {
    const { firstStatus = 200, ...cacheOptions } = options;
    const recorder = errorRecorder();
    const cache: IsrMiddleware = isr({
      onError: recorder.onError,
      logger: recorder.logger,
      ...cacheOptions,
    });
    const app = createApp();
    let seen = 0;
    let renders = 0;
    const firstRender = deferred();
    app.use((req, _res, next) => {
      if (!isRegeneration(req)) seen += 1;
      next();
    });
    app.use(cache);
    app.get('/cold', async (_req, res) => {
      renders += 1;
      const n = renders;
      if (n === 1) await firstRender.promise;
      res
        .status(n === 1 ? firstStatus : 200)
        .type('html')
        .send(`<h1>render ${n}</h1>`);
    });

    let received = 0;
    const server = http.createServer(cache.handler(app));
    server.on('request', () => {
      received += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });
    cleanups.push(async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cache.close();
    });

    const get = () =>
      new Promise<Reply>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/cold', agent }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              body += chunk;
            });
            res.on('end', () =>
              resolve({
                status: res.statusCode ?? 0,
                body,
                state: res.headers['x-isr-cache'] as string | undefined,
                cacheStatus: res.headers['cache-status'] as string | undefined,
              }),
            );
          })
          .on('error', reject);
      });

    /** Sends `count` requests; `arrived` resolves once the server has received every one. */
    function herd(count: number) {
      const replies = Promise.all(Array.from({ length: count }, get));
      const arrived = waitFor(`${count} requests received`, () => received >= count, 10_000, 5);
      return { replies, arrived };
    }

    return {
      cache,
      recorder,
      herd,
      release: () => firstRender.resolve(),
      seen: () => seen,
      renders: () => renders,
    };
  }

  test('the waiters never reach the app: one render, one request seen by the app, the page for all', async () => {
    const { cache, herd, release, seen, renders, recorder } = await setup();
    const { replies, arrived } = herd(30);
    await arrived;
    release();
    const all = await replies;

    expect(renders()).toBe(1);
    expect(seen()).toBe(1);
    expect(all.map((r) => r.status)).toEqual(Array(30).fill(200));
    expect(new Set(all.map((r) => r.body))).toEqual(new Set(['<h1>render 1</h1>']));
    expect(all.filter((r) => r.state === 'MISS')).toHaveLength(30);
    expect(all.filter((r) => /collapsed/.test(r.cacheStatus ?? ''))).toHaveLength(29);
    expect(cache.stats().requests.miss).toBe(30);
    await cache.idle();
    expect(recorder.errors).toEqual([]);
  });

  test('a failed render (a 500): every waiter gets its error page in front of the app, nothing renders again', async () => {
    const { cache, herd, release, seen, renders } = await setup({ firstStatus: 500 });
    const { replies, arrived } = herd(10);
    await arrived;
    release();
    const all = await replies;

    expect(all.map((r) => r.status)).toEqual(Array(10).fill(500));
    expect(new Set(all.map((r) => r.body))).toEqual(new Set(['<h1>render 1</h1>']));
    expect(all.filter((r) => /collapsed/.test(r.cacheStatus ?? ''))).toHaveLength(9);
    expect(seen()).toBe(1);
    expect(renders()).toBe(1);
    await cache.idle();
  });

  test('waiters are answered 504 after regenerateTimeout, in front of the app, and start no render', async () => {
    const { cache, herd, release, seen, renders } = await setup({ regenerateTimeout: 100 });
    const { replies, arrived } = herd(5);
    await arrived;
    // The first render stays stuck past the deadline: the four waiters are answered without it.
    await sleep(300);
    expect(seen()).toBe(1);
    release();
    const answered = await replies;
    expect(renders()).toBe(1);
    // The first visitor is answered at the deadline too: nobody waits on a hung render.
    expect(answered.map((r) => r.status)).toEqual([504, 504, 504, 504, 504]);
    expect(answered.filter((r) => /collapsed/.test(r.cacheStatus ?? ''))).toHaveLength(4);
    await cache.idle();
  });
});
