/**
 * Failing and hanging origins: a herd on a cold page whose render throws, answers 500 or hangs
 * costs one render per backoff window, not one per request; every waiter is answered within
 * `regenerateTimeout` (the app's error page when it may be shared, else a 504 with
 * Retry-After); no new render starts while a hung one runs; and `idle()`/`close()` are bounded
 * by `regenerateTimeout` even when a render never ends. Both through the middleware and behind
 * `cache.handler(app)`.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NextFunction, Request, Response } from 'express';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { recordedCache } from '../helpers/site';
import { waitFor, within } from '../helpers/time';

const WAVE = 200;
const REGENERATE_TIMEOUT = 1000;

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

type Route = 'throw' | '500' | 'hang';

const cleanups = cleanupsAfterEach();

describe.each(expressVersions)('a herd on a failing cold page (%s)', (_name, createApp) => {
  async function setup(route: Route, fastPath: boolean) {
    const { clock, recorder, cache } = recordedCache({
      // The backoff is capped at regenerateTimeout: long enough here to see it double.
      regenerateTimeout: route === 'hang' ? REGENERATE_TIMEOUT : 30_000,
    });
    const app = createApp();
    let received = 0;
    let renders = 0;
    let healthy = false;
    const hang = deferred();
    app.use(cache);
    app.get('/page', (_req: Request, res: Response, next: NextFunction) => {
      renders += 1;
      const n = renders;
      const good = () => res.type('html').send(`<h1>render ${n}</h1>`);
      if (healthy) return good();
      if (route === 'throw') throw new Error('database down');
      if (route === 'hang') {
        hang.promise.then(good, next);
        return undefined;
      }
      // Answers 500 once the whole wave reached the server: the others are waiting for it.
      const since = Date.now();
      const answer = () => {
        if (received < WAVE && Date.now() - since < 2000) setTimeout(answer, 5);
        else res.status(500).type('html').send('<h1>database down</h1>');
      };
      answer();
      return undefined;
    });
    const server = http.createServer(fastPath ? cache.handler(app as never) : app);
    server.on('request', () => {
      received += 1;
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    cleanups.push(async () => {
      hang.resolve();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await within(5000, cache.close());
    });

    /** One GET on a connection of its own; `undefined` when not answered within `timeoutMs`. */
    const get = (timeoutMs = 5000) =>
      new Promise<Answer | undefined>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/page', agent: false }, (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            body += chunk;
          });
          res.on('end', () => {
            clearTimeout(timer);
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
          res.on('error', () => resolve(undefined));
        });
        const timer = setTimeout(() => {
          req.destroy();
          resolve(undefined);
        }, timeoutMs);
        req.on('error', () => {
          clearTimeout(timer);
          resolve(undefined);
        });
      });

    /** `WAVE` concurrent GETs, counted from zero at the server. */
    const wave = (timeoutMs?: number) => {
      received = 0;
      return Array.from({ length: WAVE }, () => get(timeoutMs));
    };

    return {
      cache,
      clock,
      recorder,
      wave,
      get,
      heal: () => {
        healthy = true;
      },
      release: () => hang.resolve(),
      renders: () => renders,
    };
  }

  const paths: [string, boolean][] = [
    ['through the middleware', false],
    ['behind cache.handler(app)', true],
  ];

  describe.each(paths)('%s', (_how, fastPath) => {
    test.each([
      ['throws', 'throw' as Route],
      ['answers 500', '500' as Route],
    ])(
      'a route that %s: one render per backoff window, its error page for everyone, with Retry-After',
      async (_what, route) => {
        const s = await setup(route, fastPath);
        const first = (await Promise.all(s.wave())) as Answer[];
        expect(s.renders()).toBe(1);
        expect(first.map((a) => a?.status)).toEqual(Array(WAVE).fill(500));
        // The first visitor got the app's answer, passed on; every other request got that same
        // page, shared (`collapsed`). None of them is stored.
        const leader = first.filter((a) => !/collapsed/.test(String(a.headers['cache-status'])));
        expect(leader).toHaveLength(1);
        expect(leader[0].headers['cache-status']).toBe('express-isr; fwd=uri-miss; fwd-status=500');
        expect(first.filter((a) => a !== leader[0])).toHaveLength(WAVE - 1);
        for (const answer of first) {
          expect(answer.headers['x-isr-cache']).toBe('MISS');
          expect(answer.headers['retry-after']).toBe('1');
          expect(answer.headers['set-cookie']).toBeUndefined();
          expect(answer.body).toBe(leader[0].body);
        }
        if (route === '500') expect(leader[0].body).toBe('<h1>database down</h1>');

        // The next wave, within the backoff: answered from the failure, nothing rendered.
        const second = (await Promise.all(s.wave())) as Answer[];
        expect(s.renders()).toBe(1);
        expect(second.map((a) => a?.status)).toEqual(Array(WAVE).fill(500));
        expect(second.every((a) => a.headers['retry-after'] === '1')).toBe(true);

        // After the backoff, one request renders again (and fails again: two renders in all).
        s.clock.advance(1000);
        const third = (await Promise.all(s.wave())) as Answer[];
        expect(s.renders()).toBe(2);
        expect(third.map((a) => a?.status)).toEqual(Array(WAVE).fill(500));
        // The second failure in a row backs off twice as long.
        expect(third.filter((a) => a.headers['retry-after'] === '2')).toHaveLength(WAVE - 1);

        // The app recovers: after the backoff one render, shared, stored; then hits.
        s.heal();
        s.clock.advance(2000);
        const healed = (await Promise.all(s.wave())) as Answer[];
        expect(s.renders()).toBe(3);
        expect(new Set(healed.map((a) => `${a?.status} ${a?.body}`))).toEqual(
          new Set(['200 <h1>render 3</h1>']),
        );
        await s.cache.idle();
        const hit = (await s.get()) as Answer;
        expect(`${hit.headers['x-isr-cache']} ${hit.body}`).toBe('HIT <h1>render 3</h1>');
        expect(s.renders()).toBe(3);
      },
    );

    test('a route that hangs: the waiters get a 504 with Retry-After, and nobody starts another render while it hangs', async () => {
      const s = await setup('hang', fastPath);
      const first = s.wave(10_000);
      const answered: Answer[] = [];
      for (const pending of first) pending.then((a) => a && answered.push(a));
      // Everyone is answered once the render ran past regenerateTimeout, the leader too.
      await waitFor('every waiter answered', () => answered.length >= WAVE, 5000);
      expect(s.renders()).toBe(1);
      for (const answer of answered) {
        expect(answer.status).toBe(504);
        expect(answer.headers['x-isr-cache']).toBe('MISS');
        expect(Number(answer.headers['retry-after'])).toBeGreaterThanOrEqual(1);
        expect(answer.headers['cache-control']).toBe('no-store');
        expect(answer.body).toMatch(/504 Gateway Timeout/);
      }
      expect(s.recorder.errors.map((e) => `${e.context.phase}: ${e.error.message}`)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^miss: the render took longer than regenerateTimeout \\(${REGENERATE_TIMEOUT} ms\\)`,
          ),
        ),
      ]);

      // Long after the backoff (capped at regenerateTimeout), the render still hangs: a new
      // wave starts no render of its own.
      s.clock.advance(10_000);
      const second = (await Promise.all(s.wave())) as Answer[];
      expect(second.map((a) => a?.status)).toEqual(Array(WAVE).fill(504));
      expect(s.renders()).toBe(1);

      // It finally ends, well (within regenerateTimeout after its deadline, before it would be
      // cut off): the page is cached.
      s.release();
      await s.cache.idle();
      const after = (await Promise.all(s.wave())) as Answer[];
      expect(
        new Set(after.map((a) => `${a?.status} ${a?.headers['x-isr-cache']} ${a?.body}`)),
      ).toEqual(new Set(['200 HIT <h1>render 1</h1>']));
      expect(s.renders()).toBe(1);
    });
  });
});

describe.each(expressVersions)(
  'idle() and close() while a render hangs (%s)',
  (_name, createApp) => {
    test('both resolve after about regenerateTimeout, whatever the route still does', async () => {
      const cache = isr({ regenerateTimeout: REGENERATE_TIMEOUT, logger: errorRecorder().logger });
      const app = createApp();
      const started = deferred();
      const never = deferred();
      app.use(cache);
      app.get('/hang', async (_req, res) => {
        started.resolve();
        await never.promise;
        res.send('late');
      });
      const server = http.createServer(app);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;
      const client = http.get({ host: '127.0.0.1', port, path: '/hang', agent: false });
      client.on('error', () => {});
      try {
        await started.promise;
        expect(await within(5000, cache.idle())).not.toBe('timeout');
        expect(await within(5000, cache.close())).not.toBe('timeout');
      } finally {
        never.resolve();
        client.destroy();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  },
);
