/**
 * On-demand revalidation through `cache.revalidatePath` and `cache.revalidateTag`: which pages
 * a call covers (query variants, trailing slash, layouts, tags from `res.isr`, `Cache-Tag` and
 * `Surrogate-Key`), the three modes (`stale`, `expire`, `regenerate` with its concurrency cap),
 * that a regeneration started before an invalidation never wins over it, bad input, a frozen
 * clock, a store that cannot record the invalidation, and two instances sharing Redis.
 * The core behaviours run against the memory store and a real Redis Keyv store.
 */
import KeyvRedis from '@keyv/redis';
import type { Express } from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrOptions, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { deferred } from '../helpers/deferred';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { fakeClock, sleep, waitFor } from '../helpers/time';

/** What a route sets on a page: tags through `res.isr`, or CDN-style tag headers. */
interface PageSpec {
  isrTags?: string[];
  cacheTag?: string;
  surrogateKey?: string;
}

/** Closed after every test, even a failing one, in reverse order of opening. */
const cleanups = cleanupsAfterEach();

/** A fresh Redis-backed Keyv in its own namespace, cleared and disconnected after the test. */
function redisKeyv(): Keyv {
  const keyv = new Keyv({
    store: new KeyvRedis(REDIS_URL),
    namespace: uniqueNamespace('revalidate'),
    useKeyPrefix: false,
  });
  cleanups.push(async () => {
    await keyv.clear();
    await keyv.disconnect();
  });
  return keyv;
}

/** The body a page has for a URL and the site's content version when its render started. */
const page = (url: string, version: string) => `<p>${url} ${version}</p>`;

/**
 * An app whose every GET is a page showing its URL and the site's current content version
 * (read when the render starts). Renders can be held open with `hold()`.
 */
function site(
  createApp: ExpressFactory,
  options: IsrOptions = {},
  clock = fakeClock(),
  pages: Record<string, PageSpec> = {},
) {
  const recorder = errorRecorder();
  const cache = isr({
    now: clock.now,
    onError: recorder.onError,
    logger: recorder.logger,
    ...options,
  });
  const app = createApp();
  const content = { version: 'v1' };
  const renders = new Map<string, number>();
  let gate: { promise: Promise<void>; resolve: () => void } | undefined;
  const concurrency = { active: 0, max: 0 };

  app.use(cache);
  app.use(async (req, res) => {
    const path = req.path.length > 1 ? req.path.replace(/\/$/, '') : req.path;
    renders.set(path, (renders.get(path) ?? 0) + 1);
    const version = content.version;
    concurrency.active += 1;
    concurrency.max = Math.max(concurrency.max, concurrency.active);
    try {
      if (gate !== undefined) await gate.promise;
    } finally {
      concurrency.active -= 1;
    }
    const spec = pages[path] ?? {};
    if (spec.isrTags) res.isr({ tags: spec.isrTags });
    if (spec.cacheTag !== undefined) res.set('Cache-Tag', spec.cacheTag);
    if (spec.surrogateKey !== undefined) res.set('Surrogate-Key', spec.surrogateKey);
    res.send(page(req.originalUrl, version));
  });

  const self = {
    app,
    cache,
    clock,
    content,
    recorder,
    concurrency,
    renders: (path: string) => renders.get(path) ?? 0,
    totalRenders: () => [...renders.values()].reduce((a, b) => a + b, 0),
    /** From now on renders wait until `release()`. */
    hold() {
      gate = deferred<void>();
    },
    release() {
      gate?.resolve();
      gate = undefined;
    },
  };
  cleanups.push(async () => {
    self.release();
    await cache.close();
  });
  return self;
}

type Site = ReturnType<typeof site>;

async function visit(app: Express, url: string) {
  const response = await request(app).get(url);
  expect(response.status).toBe(200);
  return { state: response.headers['x-isr-cache'] as string, body: response.text };
}

/** Each URL rendered once and stored: a MISS, then a HIT. */
async function warm(s: Site, urls: string[]) {
  for (const url of urls) expect((await visit(s.app, url)).state).toBe('MISS');
  await s.cache.idle();
  for (const url of urls)
    expect(await visit(s.app, url)).toEqual({ state: 'HIT', body: page(url, 'v1') });
}

async function expectVisit(s: Site, url: string, state: string, version: string) {
  expect({ url, ...(await visit(s.app, url)) }).toEqual({ url, state, body: page(url, version) });
}

/** The error a call threw or rejected with, or undefined. */
async function failureOf(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  return undefined;
}

const storeKinds: [string, () => IsrOptions][] = [
  ['memory store', () => ({})],
  ['Redis Keyv store', () => ({ store: redisKeyv() })],
];

describe.each(expressVersions)('on-demand revalidation (%s)', (_name, createApp) => {
  describe.each(storeKinds)('%s', (_store, storeOptions) => {
    const setup = (pages: Record<string, PageSpec> = {}, options: IsrOptions = {}) =>
      site(createApp, { ...storeOptions(), ...options }, fakeClock(), pages);

    test("revalidatePath('/p') makes /p and every query variant STALE, then HIT with the new page; /p2 and /q stay HIT", async () => {
      const s = setup();
      const urls = ['/p', '/p?a=1', '/p?a=1&b=2', '/p2', '/q', '/p/child'];
      await warm(s, urls);

      s.content.version = 'v2';
      await s.cache.revalidatePath('/p');

      await expectVisit(s, '/p', 'STALE', 'v1');
      await expectVisit(s, '/p?a=1', 'STALE', 'v1');
      await expectVisit(s, '/p?a=1&b=2', 'STALE', 'v1');
      await expectVisit(s, '/p2', 'HIT', 'v1');
      await expectVisit(s, '/q', 'HIT', 'v1');
      await expectVisit(s, '/p/child', 'HIT', 'v1'); // type 'page' does not reach below /p
      await s.cache.idle();

      await expectVisit(s, '/p', 'HIT', 'v2');
      await expectVisit(s, '/p?a=1', 'HIT', 'v2');
      await expectVisit(s, '/p?a=1&b=2', 'HIT', 'v2');
      expect(s.renders('/p')).toBe(6); // 3 variants, each rendered once more
      expect(s.renders('/p2')).toBe(1);
      expect(s.renders('/q')).toBe(1);
    });

    test('a trailing slash counts as the same page, both ways', async () => {
      const s = setup();
      await warm(s, ['/p', '/p/', '/other/']);

      await s.cache.revalidatePath('/p/');
      await expectVisit(s, '/p', 'STALE', 'v1');
      await expectVisit(s, '/p/', 'STALE', 'v1');
      await expectVisit(s, '/other/', 'HIT', 'v1');
      await s.cache.idle();
      await expectVisit(s, '/p', 'HIT', 'v1');

      await s.cache.revalidatePath('/other');
      await expectVisit(s, '/other/', 'STALE', 'v1');
      await expectVisit(s, '/p/', 'HIT', 'v1');
    });

    test("type: 'layout' on /blog covers /blog and everything below it, not /blogger nor /about", async () => {
      const s = setup();
      await warm(s, ['/blog', '/blog/a', '/blog/a/b', '/blog/a?page=2', '/blogger', '/about']);

      s.content.version = 'v2';
      await s.cache.revalidatePath('/blog', { type: 'layout' });

      await expectVisit(s, '/blog', 'STALE', 'v1');
      await expectVisit(s, '/blog/a', 'STALE', 'v1');
      await expectVisit(s, '/blog/a/b', 'STALE', 'v1');
      await expectVisit(s, '/blog/a?page=2', 'STALE', 'v1');
      await expectVisit(s, '/blogger', 'HIT', 'v1');
      await expectVisit(s, '/about', 'HIT', 'v1');
      await s.cache.idle();
      await expectVisit(s, '/blog/a/b', 'HIT', 'v2');
    });

    test("revalidatePath('/', { type: 'layout' }) covers every page", async () => {
      const s = setup();
      const urls = ['/', '/blog', '/blog/a/b', '/about?x=1'];
      await warm(s, urls);

      s.content.version = 'v2';
      await s.cache.revalidatePath('/', { type: 'layout' });
      for (const url of urls) await expectVisit(s, url, 'STALE', 'v1');
      await s.cache.idle();
      for (const url of urls) await expectVisit(s, url, 'HIT', 'v2');
    });

    test("revalidateTag('posts') covers tags from res.isr, Cache-Tag and Surrogate-Key; untagged pages stay HIT", async () => {
      const s = setup({
        '/by-isr': { isrTags: ['posts', 'featured'] },
        '/by-cache-tag': { cacheTag: 'posts, x' },
        '/by-surrogate-key': { surrogateKey: 'posts x' },
        '/other-tag': { isrTags: ['posts-archive'], cacheTag: 'x', surrogateKey: 'postsx y' },
        '/untagged': {},
      });
      const tagged = ['/by-isr', '/by-cache-tag', '/by-surrogate-key'];
      await warm(s, [...tagged, '/other-tag', '/untagged']);

      s.content.version = 'v2';
      await s.cache.revalidateTag('posts');

      for (const url of tagged) await expectVisit(s, url, 'STALE', 'v1');
      await expectVisit(s, '/other-tag', 'HIT', 'v1');
      await expectVisit(s, '/untagged', 'HIT', 'v1');
      await s.cache.idle();
      for (const url of tagged) await expectVisit(s, url, 'HIT', 'v2');
      expect(s.renders('/other-tag')).toBe(1);
      expect(s.renders('/untagged')).toBe(1);
    });

    test("mode: 'expire': the next request renders (MISS) and nobody gets the old page; 'stale' is the default", async () => {
      const s = setup({ '/gone': { isrTags: ['gone'] }, '/kept': { isrTags: ['kept'] } });
      await warm(s, ['/gone', '/gone?x=1', '/kept']);

      s.content.version = 'v2';
      await s.cache.revalidateTag('gone', { mode: 'expire' });
      await expectVisit(s, '/gone', 'MISS', 'v2');
      // Concurrent visitors of another expired variant: one renders, none gets the old page
      // (the others join that render or, once it is stored, get it as a HIT).
      const responses = await Promise.all(
        Array.from({ length: 5 }, () => request(s.app).get('/gone?x=1')),
      );
      for (const response of responses) expect(response.text).toBe(page('/gone?x=1', 'v2'));
      expect(responses.map((r) => r.headers['x-isr-cache'])).not.toContain('STALE');
      expect(responses.map((r) => r.headers['x-isr-cache'])).toContain('MISS');
      await s.cache.idle();
      await expectVisit(s, '/gone', 'HIT', 'v2');

      await s.cache.revalidatePath('/kept', { mode: 'expire' });
      await expectVisit(s, '/kept', 'MISS', 'v2');

      // No mode given: stale.
      s.content.version = 'v3';
      await s.cache.idle();
      await s.cache.revalidateTag('gone');
      await expectVisit(s, '/gone', 'STALE', 'v2');
      await s.cache.idle();
      await expectVisit(s, '/gone', 'HIT', 'v3');
    });

    test("mode: 'regenerate': matching pages are re-rendered at once, so the next visitor gets the new page as a HIT", async () => {
      const s = setup({
        '/r/1': { isrTags: ['posts'] },
        '/r/2': { cacheTag: 'posts' },
        '/r/3': { surrogateKey: 'news posts' },
        '/other': { isrTags: ['other'] },
      });
      const matching = ['/r/1', '/r/2', '/r/3'];
      await warm(s, [...matching, '/other', '/untagged']);

      s.content.version = 'v2';
      // No idle(): the call itself resolves once the matching pages are re-rendered.
      await s.cache.revalidateTag('posts', { mode: 'regenerate' });

      for (const url of matching) expect(s.renders(url)).toBe(2);
      expect(s.renders('/other')).toBe(1);
      expect(s.renders('/untagged')).toBe(1);
      for (const url of matching) await expectVisit(s, url, 'HIT', 'v2');
      await expectVisit(s, '/other', 'HIT', 'v1');
      await expectVisit(s, '/untagged', 'HIT', 'v1');
      for (const url of matching) expect(s.renders(url)).toBe(2);
    });

    test("mode: 'regenerate' by path re-renders every query variant of the path", async () => {
      const s = setup();
      await warm(s, ['/p', '/p?a=1', '/p2']);

      s.content.version = 'v2';
      await s.cache.revalidatePath('/p', { mode: 'regenerate' });

      expect(s.renders('/p')).toBe(4);
      expect(s.renders('/p2')).toBe(1);
      await expectVisit(s, '/p', 'HIT', 'v2');
      await expectVisit(s, '/p?a=1', 'HIT', 'v2');
      await expectVisit(s, '/p2', 'HIT', 'v1');
    });

    test("mode: 'regenerate' on 10 pages runs at most 4 renders at once", async () => {
      const pages: Record<string, PageSpec> = {};
      const urls = Array.from({ length: 10 }, (_, i) => `/many/${i}`);
      for (const url of urls) pages[url] = { isrTags: ['many'] };
      const s = setup(pages);
      await warm(s, urls);
      s.concurrency.max = 0;

      s.content.version = 'v2';
      s.hold();
      const revalidated = s.cache.revalidateTag('many', { mode: 'regenerate' });
      await waitFor('the first regenerations', () => s.concurrency.active > 0);
      await sleep(40); // let any extra ones start
      expect(s.concurrency.active).toBeGreaterThan(0);
      expect(s.concurrency.active).toBeLessThanOrEqual(4);
      s.release();
      await revalidated;

      expect(s.concurrency.max).toBeLessThanOrEqual(4);
      for (const url of urls) expect(s.renders(url)).toBe(2);
      for (const url of urls) await expectVisit(s, url, 'HIT', 'v2');
    });

    test("mode: 'regenerate' waits for a re-render at most regenerateTimeout; past it the old page stays, STALE", async () => {
      const s = setup({}, { regenerateTimeout: 100 });
      await warm(s, ['/slow']);

      s.content.version = 'v2';
      s.hold(); // the re-render never ends by itself
      const started = Date.now();
      await s.cache.revalidatePath('/slow', { mode: 'regenerate' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(90);
      await expectVisit(s, '/slow', 'STALE', 'v1');
      await waitFor('the timed-out regeneration reported', () => s.recorder.errors.length > 0);
      expect(s.recorder.errors[0].context).toMatchObject({ phase: 'regenerate' });
      s.release();
    });

    test("no lost update: a regeneration started before an 'expire' does not make its page servable", async () => {
      const s = setup();
      await warm(s, ['/lu']);

      s.content.version = 'v2';
      await s.cache.revalidatePath('/lu');
      s.hold();
      await expectVisit(s, '/lu', 'STALE', 'v1');
      await waitFor('the slow regeneration to start', () => s.renders('/lu') === 2);

      // The content is withdrawn while the regeneration (which read v2) is still running.
      s.content.version = 'v3';
      s.clock.advance(5);
      await s.cache.revalidatePath('/lu', { mode: 'expire' });
      s.release();
      await s.cache.idle();

      await expectVisit(s, '/lu', 'MISS', 'v3');
      await s.cache.idle();
      await expectVisit(s, '/lu', 'HIT', 'v3');
    });

    test("no lost update: after a slow regeneration lands, a later 'stale' still applies until a newer regeneration lands", async () => {
      const s = setup();
      await warm(s, ['/lu']);

      s.content.version = 'v2';
      await s.cache.revalidatePath('/lu');
      s.hold();
      await expectVisit(s, '/lu', 'STALE', 'v1');
      await waitFor('the slow regeneration to start', () => s.renders('/lu') === 2);

      s.content.version = 'v3';
      s.clock.advance(5);
      await s.cache.revalidatePath('/lu');
      s.release();
      await s.cache.idle();

      // The slow regeneration's page (v2) landed, but it started before the last invalidation.
      await expectVisit(s, '/lu', 'STALE', 'v2');
      await s.cache.idle();
      await expectVisit(s, '/lu', 'HIT', 'v3');
      expect(s.renders('/lu')).toBe(3);
    });
  });

  describe('memory store only', () => {
    test('bad input rejects with a TypeError and invalidates nothing', async () => {
      const s = site(createApp, {}, fakeClock(), { '/a': { isrTags: ['posts'] } });
      await warm(s, ['/a', '/blog']);

      const calls: [string, () => Promise<void>][] = [
        ["revalidatePath('blog')", () => s.cache.revalidatePath('blog')],
        ["revalidatePath('')", () => s.cache.revalidatePath('')],
        ["revalidatePath('/a?b=1')", () => s.cache.revalidatePath('/a?b=1')],
        ["revalidatePath('/a\\n')", () => s.cache.revalidatePath('/a\n')],
        [
          "revalidatePath('/a', { type: 'x' })",
          () => s.cache.revalidatePath('/a', { type: 'x' as any }),
        ],
        [
          "revalidatePath('/a', { type: 'layout', mode: 'x' })",
          () => s.cache.revalidatePath('/a', { type: 'layout', mode: 'x' as any }),
        ],
        [
          "revalidatePath('/', { mode: 'x' })",
          () => s.cache.revalidatePath('/', { mode: 'x' as any }),
        ],
        ['revalidatePath(5)', () => s.cache.revalidatePath(5 as any)],
        ["revalidateTag('')", () => s.cache.revalidateTag('')],
        ['revalidateTag(5)', () => s.cache.revalidateTag(5 as any)],
        [
          "revalidateTag('posts', { mode: 'x' })",
          () => s.cache.revalidateTag('posts', { mode: 'x' as any }),
        ],
      ];
      for (const [label, call] of calls) {
        const error = await failureOf(call);
        expect({ label, isTypeError: error instanceof TypeError }).toEqual({
          label,
          isTypeError: true,
        });
      }

      await expectVisit(s, '/a', 'HIT', 'v1');
      await expectVisit(s, '/blog', 'HIT', 'v1');
      expect(s.totalRenders()).toBe(2);
    });

    test('with a frozen clock, MISS → revalidatePath → STALE → idle → HIT works, again and again', async () => {
      const clock = fakeClock(); // never advanced in this test
      const s = site(createApp, {}, clock);
      await warm(s, ['/frozen']);

      for (const version of ['v2', 'v3']) {
        s.content.version = version;
        await s.cache.revalidatePath('/frozen');
        const previous = version === 'v2' ? 'v1' : 'v2';
        await expectVisit(s, '/frozen', 'STALE', previous);
        await s.cache.idle();
        await expectVisit(s, '/frozen', 'HIT', version);
      }

      s.content.version = 'v4';
      await s.cache.revalidatePath('/frozen', { mode: 'expire' });
      await expectVisit(s, '/frozen', 'MISS', 'v4');
      await s.cache.idle();
      await expectVisit(s, '/frozen', 'HIT', 'v4');
    });

    test('when the store cannot record the invalidation (its set rejects), revalidateTag and revalidatePath reject', async () => {
      const map = new Map<string, unknown>();
      const store = {
        get: async (key: string) => map.get(key),
        set: async (_key: string, _value: unknown): Promise<boolean> => {
          throw new Error('store is read-only');
        },
        delete: async (key: string) => map.delete(key),
      };
      const s = site(createApp, { store });
      expect(await failureOf(() => s.cache.revalidateTag('posts'))).toBeInstanceOf(Error);
      expect(await failureOf(() => s.cache.revalidatePath('/blog'))).toBeInstanceOf(Error);
      expect(
        await failureOf(() => s.cache.revalidateTag('posts', { mode: 'expire' })),
      ).toBeInstanceOf(Error);
    });
  });

  describe('two instances sharing one Redis Keyv', () => {
    test('revalidateTag on instance A: once it resolved, instance B serves the page STALE', async () => {
      const keyv = redisKeyv();
      const clock = fakeClock();
      const pages = { '/shared': { isrTags: ['posts'] }, '/alone': {} };
      // Without L1: every lookup reads the shared clocks, so "once it resolved" holds to the
      // millisecond. (An L1 copy learns of it by pub/sub, milliseconds later: redis-shared.)
      const a = site(createApp, { store: keyv, l1: false }, clock, pages);
      const b = site(createApp, { store: keyv, l1: false }, clock, pages);

      await warm(a, ['/shared', '/alone']);
      await expectVisit(b, '/shared', 'HIT', 'v1');
      await expectVisit(b, '/alone', 'HIT', 'v1');

      b.content.version = 'v2';
      await a.cache.revalidateTag('posts');
      // Time passes between the CMS call and the next visitor; B's regeneration starts then.
      clock.advance(1000);
      await expectVisit(b, '/shared', 'STALE', 'v1');
      await expectVisit(b, '/alone', 'HIT', 'v1');
      await b.cache.idle();
      await expectVisit(b, '/shared', 'HIT', 'v2');
      await expectVisit(a, '/shared', 'HIT', 'v2'); // B's regeneration is in the shared store
      expect(a.renders('/shared')).toBe(1);

      // And the other way round, by layout.
      a.content.version = 'v3';
      await b.cache.revalidatePath('/', { type: 'layout', mode: 'expire' });
      await expectVisit(a, '/alone', 'MISS', 'v3');
    });
  });
});
