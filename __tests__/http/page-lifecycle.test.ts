// A page's bounded life (README, "A page's life"): fresh for `revalidate`, then served STALE
// for `maxStale` while it regenerates; past that the next request renders it (MISS), and if
// that render fails (throws, answers 5xx, times out) the old page still answers for
// `staleIfError` more (RFC 5861), marked STALE with `detail="stale-if-error"`. A page that
// was never stored, or was expired on demand, gets the app's error.
import type { Express, Request, Response } from 'express';
import request from 'supertest';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

type Mode = 'ok' | 'throw' | '500' | 'hang';

function site(createApp: () => Express, options: Parameters<typeof isr>[0] = {}) {
  const clock = fakeClock();
  const errors: string[] = [];
  const cache = isr({
    now: clock.now,
    revalidate: 60,
    maxStale: 600,
    staleIfError: 3600,
    regenerateTimeout: 200,
    onError: (error) => errors.push(error.message),
    ...options,
  });
  cleanups.push(() => cache.close());
  const app = createApp();
  let mode: Mode = 'ok';
  let renders = 0;
  app.use(cache);
  // Synchronous: Express 4 passes a synchronous throw to its error handler (a 500), as
  // Express 5 does a rejected promise.
  app.get('/page', (_req: Request, res: Response) => {
    renders += 1;
    if (mode === 'throw') throw new Error('the CMS is down');
    if (mode === '500') {
      res.status(500).send('<h1>CMS down</h1>');
      return;
    }
    if (mode === 'hang') return; // never answers
    res.send(`<h1>render ${renders}</h1>`);
  });
  app.get('/route-config', (_req: Request, res: Response) => {
    renders += 1;
    if (mode !== 'ok') throw new Error('down');
    res.isr({ maxStale: 10, staleIfError: 20 });
    res.send(`<h1>render ${renders}</h1>`);
  });
  return {
    app,
    cache,
    clock,
    errors,
    renders: () => renders,
    fail: (next: Mode) => {
      mode = next;
    },
  };
}

describe.each(expressVersions)('a page’s bounded life (%s)', (_name, createApp) => {
  test('within maxStale: STALE at once, one regeneration', async () => {
    const s = site(createApp);
    expect((await request(s.app).get('/page')).headers['x-isr-cache']).toBe('MISS');
    await s.cache.idle();
    s.clock.advanceSeconds(60 + 599);
    const stale = await request(s.app).get('/page');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>render 1</h1>');
    await s.cache.idle();
    expect((await request(s.app).get('/page')).text).toBe('<h1>render 2</h1>');
  });

  test('past maxStale the next request renders (MISS), and waits for the new page', async () => {
    const s = site(createApp);
    await request(s.app).get('/page');
    await s.cache.idle();
    s.clock.advanceSeconds(60 + 600);
    const miss = await request(s.app).get('/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toBe('<h1>render 2</h1>');
    await s.cache.idle();
    expect((await request(s.app).get('/page')).headers['x-isr-cache']).toBe('HIT');
    expect((await s.cache.entry('/page'))?.state).toBe('fresh');
  });

  test.each([
    ['throws', 'throw' as const, '500'],
    ['answers 500', '500' as const, '500'],
    ['hangs past regenerateTimeout', 'hang' as const, undefined],
  ])(
    'past maxStale, a render that %s is answered with the old page (stale-if-error)',
    async (_what, mode, status) => {
      const s = site(createApp);
      await request(s.app).get('/page');
      await s.cache.idle();
      s.clock.advanceSeconds(60 + 600 + 5);
      s.fail(mode);
      const answer = await request(s.app).get('/page');
      expect(answer.status).toBe(200);
      expect(answer.text).toBe('<h1>render 1</h1>');
      expect(answer.headers['x-isr-cache']).toBe('STALE');
      expect(answer.headers['cache-status']).toBe(
        `express-isr; fwd=stale${status ? `; fwd-status=${status}` : ''}; detail="stale-if-error"`,
      );
      expect(answer.headers['cache-control']).toContain('s-maxage=0');
      // The failure was reported once, and backs off: the next request does not render again.
      expect(s.errors.length).toBeGreaterThanOrEqual(1);
      const renders = s.renders();
      const again = await request(s.app).get('/page');
      expect(again.headers['x-isr-cache']).toBe('STALE');
      expect(again.text).toBe('<h1>render 1</h1>');
      expect(s.renders()).toBe(renders);
    },
  );

  test('past maxStale + staleIfError, a failed render is the app’s error', async () => {
    const s = site(createApp);
    await request(s.app).get('/page');
    await s.cache.idle();
    s.clock.advanceSeconds(60 + 600 + 3600);
    s.fail('500');
    const answer = await request(s.app).get('/page');
    expect(answer.status).toBe(500);
    expect(answer.headers['x-isr-cache']).toBe('MISS');
    expect(answer.text).toBe('<h1>CMS down</h1>');
  });

  test('a page never stored gets the app’s error, not a stale page', async () => {
    const s = site(createApp);
    s.fail('500');
    const answer = await request(s.app).get('/page');
    expect(answer.status).toBe(500);
    expect(answer.headers['x-isr-cache']).toBe('MISS');
  });

  test('a page expired on demand is never a stand-in for a failed render', async () => {
    const s = site(createApp);
    await request(s.app).get('/page');
    await s.cache.idle();
    await s.cache.revalidatePath('/page', { mode: 'expire' });
    s.fail('500');
    const answer = await request(s.app).get('/page');
    expect(answer.status).toBe(500);
    expect(answer.text).not.toContain('render 1');
  });

  test('an on-demand stale counts maxStale from the invalidation, not from the window', async () => {
    const s = site(createApp, { revalidate: false, maxStale: 100 });
    await request(s.app).get('/page');
    await s.cache.idle();
    s.clock.advanceSeconds(10_000); // revalidate: false — still fresh
    expect((await request(s.app).get('/page')).headers['x-isr-cache']).toBe('HIT');
    s.fail('throw'); // regenerations fail: the page stays stale
    await s.cache.revalidatePath('/page');
    s.clock.advanceSeconds(99);
    expect((await request(s.app).get('/page')).headers['x-isr-cache']).toBe('STALE');
    await s.cache.idle();
    s.clock.advanceSeconds(2);
    const past = await request(s.app).get('/page');
    // Past maxStale its render is tried with the visitor waiting; it fails: stale-if-error.
    expect(past.headers['cache-status']).toContain('stale-if-error');
  });

  test('maxStale: false serves stale for ever (the previous behaviour)', async () => {
    const s = site(createApp, { maxStale: false });
    await request(s.app).get('/page');
    await s.cache.idle();
    s.fail('throw');
    s.clock.advanceSeconds(10 * 365 * 86_400);
    const stale = await request(s.app).get('/page');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>render 1</h1>');
    await s.cache.idle();
  });

  test('staleIfError: 0 — past maxStale a failed render is the app’s error', async () => {
    const s = site(createApp, { staleIfError: 0 });
    await request(s.app).get('/page');
    await s.cache.idle();
    s.clock.advanceSeconds(60 + 601);
    s.fail('500');
    expect((await request(s.app).get('/page')).status).toBe(500);
  });

  test('res.isr({ maxStale, staleIfError }) overrides the options for its page', async () => {
    const s = site(createApp);
    await request(s.app).get('/route-config');
    await s.cache.idle();
    s.clock.advanceSeconds(60 + 10); // past its own maxStale (10), within the option's (600)
    s.fail('throw');
    const withinError = await request(s.app).get('/route-config');
    expect(withinError.headers['cache-status']).toContain('stale-if-error');
    s.clock.advanceSeconds(21); // past its own staleIfError (20)
    const past = await request(s.app).get('/route-config');
    expect(past.status).toBe(500);
  });
});

describe('options and res.isr() values', () => {
  test.each([
    ['maxStale', -1],
    ['maxStale', '60'],
    ['staleIfError', Number.NaN],
    ['staleIfError', true],
    ['version', ''],
    ['version', 'has space'],
    ['version', 42],
  ])('isr({ %s: %p }) is a TypeError naming the option', (name, value) => {
    expect(() => isr({ [name]: value } as never)).toThrow(
      new RegExp(`^\\[express-isr\\] ${name} must be`),
    );
  });

  test('res.isr({ maxStale: -5 }) throws a TypeError naming the field', async () => {
    const app = expressVersions[0][1]();
    app.use(isr());
    let thrown: unknown;
    app.get('/x', (_req, res) => {
      try {
        res.isr({ maxStale: -5 });
      } catch (error) {
        thrown = error;
      }
      res.send('<p>x</p>');
    });
    await request(app).get('/x');
    expect(String(thrown)).toMatch(/res\.isr\(\{ maxStale \}\) must be a number of seconds/);
  });
});
