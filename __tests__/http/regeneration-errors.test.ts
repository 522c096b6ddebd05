// Errors never replace a good page: a regeneration that throws, answers non-2xx or never
// answers leaves the last good entry, which clients keep getting (STALE, 200) without ever
// seeing the error; the error goes to onError; retries back off (about 1 s, growing, at most
// 60 s); once the app recovers the page is replaced. A MISS that errors is passed through
// uncached.
import type { Request, Response } from 'express';
import request from 'supertest';
import { isRegeneration, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { expressVersions } from '../helpers/express';
import { recordedCache } from '../helpers/site';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

type Behaviour = 'ok' | 'throw' | 'status 500' | 'status 404' | 'never answers' | 'async reject';

const failures: Behaviour[] = [
  'throw',
  'status 500',
  'status 404',
  'never answers',
  'async reject',
];

describe.each(expressVersions)('regeneration errors (%s)', (_name, createApp) => {
  /**
   * A page whose regenerations behave as `setBehaviour` says; real visitors' renders always
   * succeed unless `missFails` is set.
   */
  function setup() {
    const { clock, recorder, cache } = recordedCache({ revalidate: 10, regenerateTimeout: 100 });
    cleanups.push(() => cache.close());
    const app = createApp();
    let behaviour: Behaviour = 'ok';
    let version = 1;
    let renders = 0;
    app.use(cache);
    app.get('/page', (req: Request, res: Response) => {
      renders += 1;
      const now = isRegeneration(req) ? behaviour : 'ok';
      switch (now) {
        case 'ok':
          res.send(`<h1>version ${version}</h1>`);
          return undefined;
        case 'throw':
          throw new Error('template exploded');
        case 'status 500':
          res.status(500).send('<h1>database down</h1>');
          return undefined;
        case 'status 404':
          res.status(404).send('<h1>post not found</h1>');
          return undefined;
        case 'never answers':
          return undefined;
        case 'async reject': {
          // What an `async` route that throws returns. Express 5 turns it into next(err);
          // Express 4 ignores it, so the response never ends. (The catch only keeps the
          // rejection from being reported as unhandled; Express sees the same promise.)
          const rejected = Promise.reject(new Error('cms unreachable'));
          rejected.catch(() => {});
          return rejected;
        }
      }
    });
    return {
      app,
      cache,
      clock,
      errors: recorder.errors,
      logged: recorder.logged,
      setBehaviour: (b: Behaviour) => {
        behaviour = b;
      },
      setVersion: (v: number) => {
        version = v;
      },
      renders: () => renders,
    };
  }

  type Setup = ReturnType<typeof setup>;

  /** Stores version 1 and lets it go stale. */
  async function stalePage(s: Setup) {
    const miss = await request(s.app).get('/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await s.cache.idle();
    s.clock.advanceSeconds(11);
  }

  /** A visitor's request: always the old page, 200, STALE, no trace of the error. */
  async function expectOldPage(s: Setup) {
    const res = await request(s.app).get('/page');
    expect(res.status).toBe(200);
    expect(res.headers['x-isr-cache']).toBe('STALE');
    expect(res.text).toBe('<h1>version 1</h1>');
    await s.cache.idle();
    return res;
  }

  describe.each(failures)('a regeneration that fails (%s)', (failure) => {
    test('leaves the last good page, which clients keep getting, and reports the error', async () => {
      const s = setup();
      await stalePage(s);
      s.setBehaviour(failure);
      s.setVersion(2);

      await expectOldPage(s);
      expect(s.renders()).toBe(2);
      expect(s.errors).toHaveLength(1);
      const [{ error, context }] = s.errors;
      expect(error).toBeInstanceOf(Error);
      expect(context).toMatchObject({ phase: 'regenerate', key: '/page', attempt: 1 });

      // The old page is still what everyone gets.
      await expectOldPage(s);
      await expectOldPage(s);
    });

    test('is not retried on the very next request, but is once about a second has passed', async () => {
      const s = setup();
      await stalePage(s);
      s.setBehaviour(failure);
      await expectOldPage(s);
      expect(s.renders()).toBe(2);

      await expectOldPage(s);
      s.clock.advance(200);
      await expectOldPage(s);
      expect(s.renders()).toBe(2);

      s.clock.advance(1300);
      await expectOldPage(s);
      expect(s.renders()).toBe(3);
      expect(s.errors).toHaveLength(2);
      expect(s.errors[1].context).toMatchObject({ phase: 'regenerate', key: '/page', attempt: 2 });
    });

    test('once the app recovers, the page is replaced', async () => {
      const s = setup();
      await stalePage(s);
      s.setBehaviour(failure);
      await expectOldPage(s);
      expect(s.errors).toHaveLength(1);

      s.setBehaviour('ok');
      s.setVersion(2);
      s.clock.advance(1500);
      await expectOldPage(s);
      const hit = await request(s.app).get('/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>version 2</h1>');
      expect(s.errors).toHaveLength(1);
    });
  });

  test('the backoff grows after each failure and is capped at a minute', async () => {
    const s = setup();
    await stalePage(s);
    s.setBehaviour('status 500');
    await expectOldPage(s); // attempt 1 fails
    expect(s.renders()).toBe(2);

    s.clock.advance(1500);
    await expectOldPage(s); // attempt 2 fails
    expect(s.renders()).toBe(3);

    // The second failure waits longer than the first did.
    s.clock.advance(1500);
    await expectOldPage(s);
    expect(s.renders()).toBe(3);
    s.clock.advance(3000);
    await expectOldPage(s); // attempt 3 fails
    expect(s.renders()).toBe(4);

    // Keep failing, each time waiting as long as the cap allows.
    for (let attempt = 4; attempt <= 12; attempt += 1) {
      s.clock.advance(60_500);
      await expectOldPage(s);
      expect(s.renders()).toBe(attempt + 1);
    }

    expect(s.errors.map(({ context }) => context.attempt)).toEqual([
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,
    ]);

    // After many failures a retry still happens a minute later, and not much sooner.
    s.clock.advance(30_000);
    await expectOldPage(s);
    expect(s.renders()).toBe(13);
    s.clock.advance(30_500);
    await expectOldPage(s);
    expect(s.renders()).toBe(14);
  });

  test('retryAt tells when the next attempt may start: about 1 s, then longer, never over 60 s', async () => {
    const s = setup();
    await stalePage(s);
    s.setBehaviour('throw');
    const failedAt: number[] = [];
    for (let attempt = 1; attempt <= 10; attempt += 1) {
      failedAt.push(s.clock.now());
      await expectOldPage(s);
      s.clock.advance(61_000);
    }
    expect(s.errors).toHaveLength(10);
    const delays = s.errors.map(({ context }, i) => (context.retryAt as number) - failedAt[i]);
    expect(delays[0]).toBeGreaterThanOrEqual(500);
    expect(delays[0]).toBeLessThanOrEqual(2000);
    expect(delays[1]).toBeGreaterThan(delays[0]);
    for (const delay of delays) expect(delay).toBeLessThanOrEqual(60_000);
    expect(delays[9]).toBeGreaterThanOrEqual(30_000);
  });

  test('the error never reaches the default logger when onError is given, and clients never see it', async () => {
    const s = setup();
    await stalePage(s);
    s.setBehaviour('throw');
    const res = await expectOldPage(s);
    expect(res.text).not.toMatch(/template exploded/);
    expect(s.errors[0].error.message).toMatch(/template exploded/);
    expect(s.logged).toEqual([]);
  });

  describe('a MISS whose route errors', () => {
    function failingMiss() {
      const clock = fakeClock();
      const cache = isr({ now: clock.now, onError: errorRecorder().onError });
      cleanups.push(() => cache.close());
      const app = createApp();
      let renders = 0;
      let healthy = false;
      app.use(cache);
      app.get('/broken', (_req, res) => {
        renders += 1;
        if (healthy) res.send(`<h1>render ${renders}</h1>`);
        else res.status(500).send(`<h1>error ${renders}</h1>`);
      });
      app.get('/throws', () => {
        renders += 1;
        throw new Error('boom');
      });
      return {
        app,
        cache,
        clock,
        renders: () => renders,
        heal: () => {
          healthy = true;
        },
      };
    }

    test('is passed on to the client uncached (MISS, not stored); the next request after its backoff renders again', async () => {
      const { app, cache, clock, renders, heal } = failingMiss();
      const first = await request(app).get('/broken');
      expect(first.status).toBe(500);
      expect(first.headers['x-isr-cache']).toBe('MISS'); // passed on, not stored
      expect(first.headers['cache-status']).not.toMatch(/stored/);
      expect(first.text).toBe('<h1>error 1</h1>');
      await cache.idle();

      // Within the backoff (about a second) the same error page answers, without a render.
      const during = await request(app).get('/broken');
      expect(during.status).toBe(500);
      expect(during.headers['x-isr-cache']).toBe('MISS');
      expect(during.headers['retry-after']).toBe('1');
      expect(during.text).toBe('<h1>error 1</h1>');
      expect(renders()).toBe(1);

      clock.advance(1000);
      const second = await request(app).get('/broken');
      expect(second.status).toBe(500);
      expect(second.headers['x-isr-cache']).toBe('MISS');
      expect(second.text).toBe('<h1>error 2</h1>');
      expect(renders()).toBe(2);
      await cache.idle();

      heal();
      clock.advance(2000); // the second failure in a row backs off twice as long
      const healed = await request(app).get('/broken');
      expect(healed.status).toBe(200);
      expect(healed.headers['x-isr-cache']).toBe('MISS');
      expect(healed.text).toBe('<h1>render 3</h1>');
      await cache.idle();
      const hit = await request(app).get('/broken');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>render 3</h1>');
    });

    test('a route that throws on a MISS gets the app error handler answer, not cached', async () => {
      const { app, cache, clock, renders } = failingMiss();
      const first = await request(app).get('/throws');
      expect(first.status).toBe(500);
      expect(first.headers['x-isr-cache']).toBe('MISS'); // Express's error page, passed on
      expect(first.headers['cache-status']).not.toMatch(/stored/);
      await cache.idle();
      clock.advance(1000); // past the failed render's backoff
      const second = await request(app).get('/throws');
      expect(second.status).toBe(500);
      expect(renders()).toBe(2);
    });
  });
});
