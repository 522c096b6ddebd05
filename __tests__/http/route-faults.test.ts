/**
 * Route faults: a route that hangs, throws, rejects, streams half a page and
 * then fails (`next(err)`, `res.destroy()`, or just stops), or ends with `res.destroy()` — on a
 * MISS and on a regeneration. A partial page is never stored and never served to a later
 * request; the last good page survives every failed regeneration (also a render that finishes
 * only after the `regenerateTimeout` deadline); the failure goes to `onError`, never to a
 * client; and nothing ends as an unhandled rejection.
 * (regeneration-errors.test.ts covers backoff timing and non-2xx answers; this suite is about
 * what happens to the bytes of a response that breaks half way.)
 *
 * Unhandled rejections: Jest 30 intercepts them itself and fails the test that was running
 * (the listener this file installs then sees nothing); the listener is kept for runners that
 * do not, and its list is checked after every test.
 */
import type { NextFunction, Request, Response } from 'express';
import { isRegeneration } from '../../lib';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { type Answer, listen } from '../helpers/http';
import { recordedCache } from '../helpers/site';
import { sleep } from '../helpers/time';

type Fault =
  | 'hang'
  | 'throw'
  | 'reject'
  | 'half, then next(err)'
  | 'half, then res.destroy()'
  | 'half, then nothing'
  | 'res.destroy()';
type Mode = 'good' | Fault | 'late';

const FAULTS: Fault[] = [
  'hang',
  'throw',
  'reject',
  'half, then next(err)',
  'half, then res.destroy()',
  'half, then nothing',
  'res.destroy()',
];

/** A complete page: big enough to be streamed in pieces, with an end marker. */
function page(version: number): string {
  const filler = `<p>${'lorem ipsum '.repeat(40)}</p>`.repeat(10);
  return `<!doctype html><html><h1>version ${version}</h1>${filler}<footer>end of version ${version}</footer></html>`;
}
const HALF = (version: number) => page(version).slice(0, 2000);

/** What this file did, printed once at the end (SECURITY.md quotes it). */
const figures = { brokenRenders: 0, requests: 0 };
afterAll(() => {
  console.log(
    `[route-faults] ${figures.brokenRenders} broken renders injected (MISS and regeneration); ` +
      `${figures.requests} requests in all`,
  );
});

const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown) => {
  unhandled.push(reason);
};
beforeAll(() => {
  process.on('unhandledRejection', onUnhandled);
});
afterAll(() => {
  process.off('unhandledRejection', onUnhandled);
});

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  expect(unhandled.splice(0)).toEqual([]);
});

describe.each(expressVersions)('route faults (%s)', (_name, createApp) => {
  async function setup() {
    const { clock, recorder, cache } = recordedCache({ revalidate: 10, regenerateTimeout: 100 });
    const app = createApp();
    const state = {
      mode: 'good' as Mode,
      version: 1,
      /** Resolved by a faulty route once it started, so the test can act on it. */
      arrived: deferred(),
      /** What the `late` route waits for before answering. */
      release: deferred(),
    };
    app.use(cache);
    app.get('/page', (_req: Request, res: Response, next: NextFunction) => {
      const version = state.version;
      const mode = state.mode;
      if (mode !== 'good') figures.brokenRenders += 1;
      state.arrived.resolve();
      switch (mode) {
        case 'good':
          res.type('html').send(page(version));
          return undefined;
        case 'late':
          // Answers the full, good page — once the test says so, after the deadline passed.
          state.release.promise.then(() => {
            if (!res.destroyed) res.type('html').send(page(version));
          });
          return undefined;
        case 'hang':
          return undefined;
        case 'throw':
          throw new Error('template exploded');
        case 'reject': {
          // An async route that throws: Express 5 passes it to next(err), Express 4 ignores
          // it and the response never ends. (The catch keeps the route's own rejection from
          // being unhandled: the same promise still reaches Express.)
          const rejected = Promise.reject(new Error('cms unreachable'));
          rejected.catch(() => {});
          return rejected;
        }
        case 'half, then next(err)':
          res.type('html');
          res.write(HALF(version));
          setImmediate(() => next(new Error('stream broke')));
          return undefined;
        case 'half, then res.destroy()':
          res.type('html');
          res.write(HALF(version));
          setImmediate(() => res.destroy());
          return undefined;
        case 'half, then nothing':
          res.type('html');
          res.write(HALF(version));
          return undefined;
        case 'res.destroy()':
          res.destroy();
          return undefined;
      }
    });
    // A typical error handler: an error page when it still can, else Express's own handling.
    app.use((err: Error, req: Request, res: Response, next: NextFunction) => {
      if (res.headersSent || isRegeneration(req)) return next(err);
      res.status(500).type('html').send('<h1>Something went wrong</h1>');
    });
    const server = await listen(app);
    const send: typeof server.send = (request) => {
      figures.requests += 1;
      return server.send(request);
    };
    const site = { send, get: (path: string) => send({ path }) };
    cleanups.push(async () => {
      state.release.resolve();
      await cache.close();
      await server.close();
    });
    return { site, cache, clock, recorder, state };
  }

  type Site = Awaited<ReturnType<typeof setup>>;

  /** A visitor who gives up on a response that never ends once the route has started. */
  async function visitFaulty(s: Site, fault: Mode): Promise<Answer> {
    s.state.arrived = deferred();
    const leave = new AbortController();
    const answer = s.site.send({ path: '/page', signal: leave.signal, timeoutMs: 10_000 });
    if (fault === 'hang' || fault === 'half, then nothing' || fault === 'reject') {
      await s.state.arrived.promise;
      await sleep(20);
      leave.abort();
    }
    return answer;
  }

  /** Nothing a client got was a half page passed off as whole. */
  function expectNoHalfPage(answer: Answer) {
    if (answer.error === undefined && answer.status === 200) {
      expect(answer.body).toMatch(/^<!doctype html><html>.*<\/html>$/s);
    }
  }

  describe.each(FAULTS)('%s', (fault) => {
    test('on a MISS: nothing is stored, the next visitor gets a whole page rendered for them', async () => {
      const s = await setup();
      s.state.mode = fault;
      const broken = await visitFaulty(s, fault);
      expectNoHalfPage(broken);
      if (broken.error === undefined) expect(broken.status).toBe(500);
      await s.cache.idle();
      expect(await s.cache.entry('/page')).toBeUndefined();

      s.state.mode = 'good';
      s.state.version = 2;
      // A failed cold render backs off (README): the next visitor after it gets a render.
      s.clock.advance(1000);
      const next = await s.site.get('/page');
      expect(next.error).toBeUndefined();
      expect(next.status).toBe(200);
      expect(next.headers['x-isr-cache']).toBe('MISS');
      expect(next.body).toBe(page(2));
      await s.cache.idle();
      const hit = await s.site.get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.body).toBe(page(2));
    });

    test('on a regeneration: the last good page survives, whole, and is replaced once the route recovers', async () => {
      const s = await setup();
      const first = await s.site.get('/page');
      expect(first.headers['x-isr-cache']).toBe('MISS');
      await s.cache.idle();
      const stored = await s.cache.entry('/page');
      expect(stored?.size).toBe(Buffer.byteLength(page(1)));

      s.state.mode = fault;
      s.state.version = 2;
      // Three failed attempts in a row, each after its backoff.
      for (const wait of [11, 2, 4]) {
        s.clock.advanceSeconds(wait);
        const stale = await s.site.get('/page');
        expect(stale.headers['x-isr-cache']).toBe('STALE');
        expect(stale.body).toBe(page(1));
        await s.cache.idle();
        const after = await s.site.get('/page');
        expect(after.status).toBe(200);
        expect(after.body).toBe(page(1));
        expect(after.body).not.toContain('version 2');
        await s.cache.idle();
      }
      const kept = await s.cache.entry('/page');
      expect(kept?.generatedAt).toBe(stored?.generatedAt);
      expect(kept?.size).toBe(Buffer.byteLength(page(1)));
      expect(s.recorder.errors.length).toBeGreaterThanOrEqual(3);
      expect(s.recorder.errors.every((e) => e.context.phase === 'regenerate')).toBe(true);

      s.state.mode = 'good';
      s.state.version = 3;
      s.clock.advanceSeconds(10);
      expect((await s.site.get('/page')).body).toBe(page(1));
      await s.cache.idle();
      const recovered = await s.site.get('/page');
      expect(recovered.headers['x-isr-cache']).toBe('HIT');
      expect(recovered.body).toBe(page(3));
    });
  });

  test('a regeneration that answers a whole page only after the deadline is not stored', async () => {
    const s = await setup();
    await s.site.get('/page');
    await s.cache.idle();

    s.state.mode = 'late';
    s.state.version = 2;
    s.clock.advanceSeconds(11);
    expect((await s.site.get('/page')).headers['x-isr-cache']).toBe('STALE');
    await s.cache.idle(); // the 100 ms deadline passes
    expect(s.recorder.errors.map((e) => e.error.message).join()).toMatch(/longer than 100 ms/);
    s.state.release.resolve(); // the route finally answers, into a response already given up
    await new Promise((resolve) => setImmediate(resolve));
    await s.cache.idle();

    const after = await s.site.get('/page');
    expect(after.headers['x-isr-cache']).toBe('STALE');
    expect(after.body).toBe(page(1));
    expect((await s.cache.entry('/page'))?.size).toBe(Buffer.byteLength(page(1)));
  });

  test('requests waiting on a MISS whose render breaks half way never get the half page', async () => {
    const s = await setup();
    s.state.mode = 'half, then res.destroy()';
    const answers = await Promise.all(Array.from({ length: 10 }, () => s.site.get('/page')));
    for (const answer of answers) {
      expectNoHalfPage(answer);
      // Each either broke off like the render it shared, or was rendered again: never a 200 half.
      if (answer.error === undefined) expect(answer.body).not.toBe(HALF(1));
    }
    await s.cache.idle();
    expect(await s.cache.entry('/page')).toBeUndefined();

    s.state.mode = 'good';
    s.clock.advance(1000); // past the failed render's backoff
    const next = await s.site.get('/page');
    expect(next.headers['x-isr-cache']).toBe('MISS');
    expect(next.body).toBe(page(1));
  });

  test('a visitor who leaves half way through a MISS does not leave a half page behind', async () => {
    const s = await setup();
    s.state.mode = 'half, then nothing';
    const gone = await visitFaulty(s, 'half, then nothing');
    expect(gone.error).toBeDefined();
    expect(HALF(1).startsWith(gone.body)).toBe(true); // what reached them before they left
    await s.cache.idle();
    expect(await s.cache.entry('/page')).toBeUndefined();
    s.state.mode = 'good';
    s.clock.advance(1000); // past the failed render's backoff
    const next = await s.site.get('/page');
    expect(next.headers['x-isr-cache']).toBe('MISS');
    expect(next.body).toBe(page(1));
  });
});
