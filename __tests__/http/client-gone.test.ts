/**
 * Clients that go away. A page's render is captured for everyone, so a visitor leaving must
 * cost nothing to the others: the capture is complete when the app ends the response, whether
 * or not its own client is still there, and a response whose client left before the capture
 * even began (an async middleware, a lease being taken) still settles. Before, such a render
 * stayed "in flight" for ever: the next visitors waited `regenerateTimeout`, `idle()` and
 * `close()` never resolved, a Redis lease was renewed for ever; and one client leaving
 * mid-render sent every waiter of the herd to render for itself.
 */
import type { RequestListener } from 'node:http';
import { type IsrOptions, isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { listen } from '../helpers/http';
import { fakeClock, sleep, within } from '../helpers/time';

/** A cache whose reports go to a recorder: these tests check what visitors get, not the log. */
function quietCache(options: IsrOptions = {}) {
  const recorder = errorRecorder();
  return isr({ onError: recorder.onError, logger: recorder.logger, ...options });
}

describe.each(expressVersions)(
  'a leader whose client left before its capture began (%s)',
  (_name, createApp) => {
    /**
     * The first request is held in an async middleware mounted before isr() (a rate limiter, a
     * session store…) while its client goes away; then it reaches the cache as the leader.
     */
    async function setup() {
      const cache = quietCache({ regenerateTimeout: 1000 });
      const app = createApp();
      const gate = deferred();
      const arrived = deferred();
      const closed = deferred();
      let first = true;
      app.use(async (_req, res, next) => {
        if (first) {
          first = false;
          res.once('close', () => closed.resolve());
          arrived.resolve();
          await gate.promise;
        }
        next();
      });
      app.use(cache);
      let renders = 0;
      app.get('/page', (_req, res) => {
        renders += 1;
        res.type('html').send(`<h1>render ${renders}</h1>`);
      });
      const server = await listen(app as unknown as RequestListener);
      const socket = server.rawGet('/page');
      await arrived.promise;
      socket.destroy();
      await closed.promise;
      gate.resolve();
      await sleep(50);
      return { cache, server, renders: () => renders };
    }

    test('the next visitor for the page is answered at once, not after regenerateTimeout', async () => {
      const { cache, server, renders } = await setup();
      try {
        expect(renders()).toBe(1); // the app rendered the page, for nobody
        const started = Date.now();
        const reply = await server.get('/page');
        expect(reply.status).toBe(200);
        expect(Date.now() - started).toBeLessThan(500); // held ~regenerateTimeout (1000 ms)
      } finally {
        await server.close();
        await within(500, cache.close());
      }
    });

    test('idle() and close() settle', async () => {
      const { cache, server } = await setup();
      try {
        await server.get('/page');
        expect(await within(1000, cache.idle())).not.toBe('timeout');
        expect(await within(1000, cache.close())).not.toBe('timeout');
      } finally {
        await server.close();
      }
    });
  },
);

describe.each(expressVersions)(
  'a leader whose client left while its lease was being taken (%s)',
  (_name, createApp) => {
    test('a leader whose client leaves while its lease is being taken releases the lease and its flight', async () => {
      const leaseTaken = deferred();
      const asked = deferred();
      let held = 0;
      let acquired = 0;
      // Stands in for the Redis lease (one round trip to take it).
      const lock = {
        async acquire() {
          acquired += 1;
          if (acquired === 1) {
            asked.resolve();
            await leaseTaken.promise;
          }
          held += 1;
          return {
            release: async () => {
              held -= 1;
            },
          };
        },
        held: async () => held > 0,
      };
      const cache = quietCache({ lock, regenerateTimeout: 1000 });
      const app = createApp();
      const closed = deferred();
      app.use((_req, res, next) => {
        res.once('close', () => closed.resolve());
        next();
      });
      app.use(cache);
      let renders = 0;
      app.get('/page', (_req, res) => {
        renders += 1;
        res.type('html').send(`<h1>render ${renders}</h1>`);
      });
      const server = await listen(app as unknown as RequestListener);
      try {
        const socket = server.rawGet('/page');
        await asked.promise;
        socket.destroy();
        await closed.promise;
        leaseTaken.resolve();
        await sleep(50);
        expect(renders).toBe(1);
        expect(held).toBe(0); // the lease is renewed for ever otherwise (lib/stores/redis/lock.ts)
        const started = Date.now();
        await server.get('/page');
        expect(Date.now() - started).toBeLessThan(500);
      } finally {
        await server.close();
        await within(500, cache.close());
      }
    });
  },
);

describe.each(expressVersions)(
  'the leader of a cold herd whose client goes away mid-render (%s)',
  (_name, createApp) => {
    test.each([
      ['through the middleware', false],
      ['behind cache.handler(app)', true],
    ])('%s: the waiters still share one render', async (_how, fastPath) => {
      const cache = quietCache();
      const app = createApp();
      const firstRender = deferred();
      const leaderClosed = deferred();
      let seen = 0;
      app.use((_req, res, next) => {
        seen += 1;
        if (seen === 1) res.once('close', () => leaderClosed.resolve());
        next();
      });
      app.use(cache);
      let renders = 0;
      const started = deferred();
      app.get('/cold', async (_req, res) => {
        renders += 1;
        const n = renders;
        if (n === 1) {
          started.resolve();
          await firstRender.promise;
        }
        res.type('html').send(`<h1>render ${n}</h1>`);
      });
      const listener = (fastPath ? cache.handler(app as never) : app) as unknown as RequestListener;
      const server = await listen(listener);
      try {
        const leader = server.rawGet('/cold');
        await started.promise;
        const waiters = Array.from({ length: 10 }, () => server.get('/cold'));
        await sleep(100); // all ten are waiting
        leader.destroy(); // an impatient client, a proxy timeout…
        await leaderClosed.promise;
        await sleep(50);
        firstRender.resolve();
        const replies = await Promise.all(waiters);
        expect(replies.map((r) => r.status)).toEqual(Array(10).fill(200));
        // README, "How it behaves": "N concurrent requests for a cold page | one render; the others wait for
        // it and get the same page (unless it turned out uncacheable …)". The page was
        // cacheable; only the first client left.
        expect(renders).toBe(1);
        expect(new Set(replies.map((r) => r.body))).toEqual(new Set(['<h1>render 1</h1>']));
      } finally {
        await server.close();
        await within(2000, cache.close());
      }
    });
  },
);

describe.each(expressVersions)(
  'behind cache.handler(app), a waiter whose client left is handed to the app (%s)',
  (_name, createApp) => {
    test('after a failed render (a 500), no render is started for a client that is gone', async () => {
      const clock = fakeClock();
      const cache = quietCache({ regenerateTimeout: 1000, now: clock.now });
      const app = createApp();
      app.use(cache);
      let renders = 0;
      const firstRender = deferred();
      const started = deferred();
      app.get('/page', async (_req, res) => {
        renders += 1;
        const n = renders;
        if (n === 1) {
          started.resolve();
          await firstRender.promise;
          res.status(500).type('html').send('<h1>oops</h1>');
          return;
        }
        res.type('html').send(`<h1>render ${n}</h1>`);
      });
      const server = await listen(cache.handler(app as never) as unknown as RequestListener);
      try {
        const leader = server.get('/page');
        await started.promise;
        const waiter = server.rawGet('/page'); // waits in front of the app…
        await sleep(50);
        waiter.destroy(); // …and gives up
        await sleep(50);
        firstRender.resolve();
        expect((await leader).status).toBe(500);
        await sleep(50);
        expect(renders).toBe(1); // the waiter got the failed render's answer: nothing rendered for nobody

        // During the failure's backoff the page's answer is that failure, without a render…
        const during = await server.get('/page');
        expect(during.status).toBe(500);
        expect(during.headers['retry-after']).toBe('1');
        expect(renders).toBe(1);
        // …and once it is over, one request renders again, at once.
        clock.advance(1000);
        const next = await server.get('/page');
        expect(next.status).toBe(200);
        expect(renders).toBe(2);
        expect(await within(1000, cache.idle())).not.toBe('timeout');
      } finally {
        await server.close();
        await within(500, cache.close());
      }
    });
  },
);

describe.each(expressVersions)(
  'a render the app gives up on after its client left (%s)',
  (_name, createApp) => {
    test('is abandoned after regenerateTimeout: nothing stored, nothing left in flight', async () => {
      const clock = fakeClock();
      const cache = quietCache({ regenerateTimeout: 150, now: clock.now });
      const app = createApp();
      app.use(cache);
      let renders = 0;
      const started = deferred();
      app.get('/page', (_req, res) => {
        renders += 1;
        if (renders === 1) {
          // An app that stops working for a client that left, and never ends the response.
          started.resolve();
          return;
        }
        res.type('html').send(`<h1>render ${renders}</h1>`);
      });
      const server = await listen(app as unknown as RequestListener);
      try {
        const socket = server.rawGet('/page');
        await started.promise;
        socket.destroy();
        const gaveUpAt = Date.now();
        // idle() waits for the flight: it ends once regenerateTimeout passed without `end`.
        expect(await within(2000, cache.idle())).not.toBe('timeout');
        expect(Date.now() - gaveUpAt).toBeGreaterThanOrEqual(100);
        clock.advance(150); // past the backoff of the render that timed out
        const next = await server.get('/page');
        expect(next.status).toBe(200);
        expect(next.headers['x-isr-cache']).toBe('MISS'); // the abandoned render stored nothing
        expect(next.body).toBe('<h1>render 2</h1>');
      } finally {
        await server.close();
        await within(1000, cache.close());
      }
    });
  },
);
