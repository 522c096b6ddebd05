/**
 * Tags that are not valid header values (a Unicode slug, CR/LF, NUL, characters above U+00FF):
 * no request ever answers 500 because of one — the MISS, a HIT, a STALE, a waiter of a herd,
 * the fast path — whether it came from `res.isr()` or the app's own `Cache-Tag` /
 * `Surrogate-Key`; `revalidateTag` and the webhook find the page by the tag as the app wrote
 * it; the CDN header carries each tag percent-encoded (visible ASCII, no separators), leaves
 * out what cannot be sent (ISR_TAG_NOT_SENT) and stops at 8 KB (ISR_TAGS_TRUNCATED).
 *
 * Warnings are printed once per process (module state), so every test loads the library
 * afresh (`jest.isolateModules`): what one test printed cannot hide a warning from the next.
 */
import { readFileSync } from 'node:fs';
import type { RequestListener } from 'node:http';
import path from 'node:path';
import type { Express, Request, Response } from 'express';
import request from 'supertest';
import { cdnTag, MAX_CDN_TAG_HEADER_BYTES } from '../../lib/request/cdn-tags';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { freshLib } from '../helpers/fresh-lib';
import { arrivals, listen } from '../helpers/http';
import { fakeClock, sleep, within } from '../helpers/time';

type Lib = typeof import('../../lib');
type Cache = ReturnType<Lib['isr']>;

const SECRET = 'a-webhook-secret-long-enough-0123456789';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

interface PageSpec {
  tags?: string[];
  /** Headers the route sets itself, e.g. its own `Cache-Tag`. */
  headers?: Record<string, string>;
}

/**
 * An app with `isr()`, a webhook at /api/revalidate and one route per page, served on
 * loopback through the middleware (`get`) and through `cache.handler(app)` (`fast`).
 */
async function setup(
  createApp: ExpressFactory,
  pages: Record<string, PageSpec>,
  options: Parameters<Lib['isr']>[0] = {},
) {
  const lib = freshLib();
  const clock = fakeClock();
  const recorder = errorRecorder();
  const cache = lib.isr({
    now: clock.now,
    onError: recorder.onError,
    logger: recorder.logger,
    ...options,
  });
  cleanups.push(() => cache.close());
  const app: Express = createApp();
  const renders = new Map<string, number>();
  app.use(cache);
  app.use('/api/revalidate', lib.revalidateRouter(cache, { secret: SECRET }));
  for (const [url, spec] of Object.entries(pages)) {
    app.get(url, (_req: Request, res: Response) => {
      const n = (renders.get(url) ?? 0) + 1;
      renders.set(url, n);
      for (const [name, value] of Object.entries(spec.headers ?? {})) res.setHeader(name, value);
      if (spec.tags !== undefined) res.isr({ tags: spec.tags });
      res.send(`<h1>${url} render ${n}</h1>`);
    });
  }
  const server = await listen(app);
  cleanups.push(server.close);
  const fast = await listen(cache.handler(app as unknown as RequestListener));
  cleanups.push(fast.close);
  return {
    lib,
    app,
    cache,
    clock,
    recorder,
    get: server.get,
    fast: fast.get,
    renders: (url: string) => renders.get(url) ?? 0,
  };
}

/** A page's path keys (`page:`, `layout:`) as every tag header carries them, before its tags. */
function keyed(path: string, tags: string, separator = ','): string {
  const parts = path.split('/').filter(Boolean);
  const layouts = parts.map((_, i) => `layout:/${parts.slice(0, i + 1).join('/')}`);
  return [`page:${path}`, 'layout:/', ...layouts, ...(tags === '' ? [] : [tags])].join(separator);
}

/** Tags no header may carry as they are, and the form the CDN header carries them in. */
const ODD_TAGS: [string, string, string | undefined][] = [
  ['a latin-1 slug', 'post-café', 'post-caf%C3%A9'],
  ['characters above U+00FF', '日本語', '%E6%97%A5%E6%9C%AC%E8%AA%9E'],
  ['an emoji (a surrogate pair)', 'launch-🚀', 'launch-%F0%9F%9A%80'],
  ['CR/LF', 'evil\r\nSet-Cookie: x=1', undefined],
  ['NUL', 'nul\0tag', undefined],
];

describe.each(expressVersions)('tags that are not header values (%s)', (_name, createApp) => {
  test.each(ODD_TAGS)(
    '%s: the MISS, the HIT, the STALE and the fast path answer 200, the tag encoded or left out',
    async (_label, tag, sent) => {
      const s = await setup(createApp, { '/page': { tags: ['posts', tag] } });
      const expected = keyed('/page', sent === undefined ? 'posts' : `posts,${sent}`);

      const miss = await s.get('/page');
      expect([miss.status, miss.headers['x-isr-cache'], miss.body]).toEqual([
        200,
        'MISS',
        '<h1>/page render 1</h1>',
      ]);
      expect(miss.headers['cache-tag']).toBe(expected);
      expect(miss.headers['set-cookie']).toBeUndefined();
      await s.cache.idle();

      const hit = await s.get('/page');
      expect([hit.status, hit.headers['x-isr-cache'], hit.body]).toEqual([
        200,
        'HIT',
        '<h1>/page render 1</h1>',
      ]);
      expect(hit.headers['cache-tag']).toBe(expected);

      const viaFastPath = await s.fast('/page');
      expect([viaFastPath.status, viaFastPath.headers['x-isr-cache']]).toEqual([200, 'HIT']);
      expect(viaFastPath.headers['cache-tag']).toBe(expected);

      s.clock.advanceSeconds(61);
      const stale = await s.get('/page');
      expect([stale.status, stale.headers['x-isr-cache']]).toEqual([200, 'STALE']);
      expect(stale.headers['cache-tag']).toBe(expected);
      await s.cache.idle();
      // The page regenerated in the background with the same tags: stored and served again.
      const again = await s.get('/page');
      expect([again.status, again.headers['x-isr-cache'], again.body]).toEqual([
        200,
        'HIT',
        '<h1>/page render 2</h1>',
      ]);
      expect(s.recorder.errors).toEqual([]);
    },
  );

  test('the waiters of a herd for a cold page with such tags get the page, not a 500', async () => {
    const lib = freshLib();
    const recorder = errorRecorder();
    const cache = lib.isr({ now: fakeClock().now, logger: recorder.logger });
    cleanups.push(() => cache.close());
    const app = createApp();
    const herd = 5;
    const gate = arrivals(herd);
    let renders = 0;
    app.use(gate.middleware);
    app.use(cache);
    app.get('/cold', async (_req: Request, res: Response) => {
      renders += 1;
      res.isr({ tags: ['日本語', 'a\r\nb'] });
      // Every other request is waiting for this render by the time it ends.
      await Promise.all([gate.allArrived, sleep(30)]);
      res.send('<h1>cold</h1>');
    });
    const server = await listen(app);
    cleanups.push(server.close);
    // Bounded: a waiter whose answer failed half-way would otherwise hold the test until its
    // timeout instead of failing here.
    const answers = await within(
      5000,
      Promise.all(Array.from({ length: herd }, () => server.get('/cold'))),
    );
    if (answers === 'timeout') throw new Error('a waiter of the herd got no answer');
    expect(renders).toBe(1);
    for (const answer of answers) {
      expect([answer.status, answer.body, answer.headers['cache-tag']]).toEqual([
        200,
        '<h1>cold</h1>',
        keyed('/cold', '%E6%97%A5%E6%9C%AC%E8%AA%9E'),
      ]);
    }
  });

  test("tags from the app's own Cache-Tag are sent encoded, the same on the MISS and the HIT", async () => {
    const s = await setup(createApp, {
      // Node lets a route set latin-1 text in a header; a CDN takes visible ASCII only.
      '/own': { tags: ['日本語'], headers: { 'Cache-Tag': 'post-café, news' } },
    });
    const expected = keyed('/own', '%E6%97%A5%E6%9C%AC%E8%AA%9E,post-caf%C3%A9,news');
    const miss = await s.get('/own');
    expect([miss.status, miss.headers['x-isr-cache']]).toEqual([200, 'MISS']);
    expect(miss.headers['cache-tag']).toBe(expected);
    await s.cache.idle();
    const hit = await s.get('/own');
    expect([hit.status, hit.headers['x-isr-cache']]).toEqual([200, 'HIT']);
    expect(hit.headers['cache-tag']).toBe(expected);
    // The tag is what the app wrote, not its encoding.
    await s.cache.revalidateTag('post-café');
    expect((await s.get('/own')).headers['x-isr-cache']).toBe('STALE');
  });

  test("with cdnTags: 'Surrogate-Key', the app's own Surrogate-Key tags are sent encoded, space-separated", async () => {
    const s = await setup(
      createApp,
      { '/own': { tags: ['a b', '日本'], headers: { 'Surrogate-Key': 'post-café news' } } },
      { cdnTags: 'Surrogate-Key' },
    );
    const expected = keyed('/own', 'a%20b %E6%97%A5%E6%9C%AC post-caf%C3%A9 news', ' ');
    const miss = await s.get('/own');
    expect([miss.status, miss.headers['surrogate-key']]).toEqual([200, expected]);
    expect(miss.headers['cache-tag']).toBeUndefined();
    await s.cache.idle();
    const hit = await s.get('/own');
    expect([hit.status, hit.headers['x-isr-cache'], hit.headers['surrogate-key']]).toEqual([
      200,
      'HIT',
      expected,
    ]);
  });

  test("with cdnTags: 'xkey', the path keys come first, then the tags, the same on the MISS, the HIT and the fast path", async () => {
    const s = await setup(
      createApp,
      { '/blog/:slug': { tags: ['posts', 'post café'] }, '/plain': {} },
      { cdnTags: 'xkey' },
    );
    // Every spelling and query variant of a page shares its path keys (the cache's own path
    // clocks, folded): a purge by path in Varnish reaches what revalidatePath reaches.
    const expected =
      'page:/blog/caf%25c3%25a9 layout:/ layout:/blog layout:/blog/caf%25c3%25a9 posts post%20caf%C3%A9';
    const miss = await s.get('/Blog/caf%c3%a9/?x=1');
    expect([miss.status, miss.headers.xkey]).toEqual([200, expected]);
    expect(miss.headers['cache-tag']).toBeUndefined();
    await s.cache.idle();
    const hit = await s.get('/Blog/caf%c3%a9/?x=1');
    expect([hit.headers['x-isr-cache'], hit.headers.xkey]).toEqual(['HIT', expected]);
    const fast = await s.fast('/Blog/caf%c3%a9/?x=1');
    expect([fast.headers['x-isr-cache'], fast.headers.xkey]).toEqual(['HIT', expected]);
    // A page without tags still carries its path keys.
    expect((await s.get('/plain')).headers.xkey).toBe('page:/plain layout:/ layout:/plain');
    await s.cache.idle();
    expect((await s.get('/plain')).headers.xkey).toBe('page:/plain layout:/ layout:/plain');
  });

  test('revalidateTag and the webhook invalidate pages by their Unicode tags, as the app wrote them', async () => {
    const s = await setup(createApp, {
      '/cafe': { tags: ['post-café'] },
      '/japan': { tags: ['日本語'] },
      '/other': { tags: ['other'] },
    });
    for (const url of ['/cafe', '/japan', '/other']) await s.get(url);
    await s.cache.idle();
    for (const url of ['/cafe', '/japan', '/other'])
      expect((await s.get(url)).headers['x-isr-cache']).toBe('HIT');

    await s.cache.revalidateTag('post-café');
    const cafe = await s.get('/cafe');
    expect([cafe.status, cafe.headers['x-isr-cache']]).toEqual([200, 'STALE']);

    const hook = await request(s.app)
      .post('/api/revalidate')
      .set('content-type', 'application/json')
      .send(JSON.stringify({ secret: SECRET, tags: ['日本語'] }));
    expect(hook.status).toBe(200);
    const japan = await s.get('/japan');
    expect([japan.status, japan.headers['x-isr-cache']]).toEqual([200, 'STALE']);
    expect((await s.get('/other')).headers['x-isr-cache']).toBe('HIT');
  });
});

describe.each(expressVersions)('the CDN tag header (%s)', (_name, createApp) => {
  const TAGS = [
    'page:/blog?x=1&y=[2]', // visible ASCII goes as it is
    "o'brien",
    'two words',
    'a,b',
    '50%',
    'say "hi"',
    'tab\there', // a control character: revalidateTag refuses it, so no CDN purge can name it
    'café',
  ];
  const SENT = [
    'page:/blog?x=1&y=[2]',
    "o'brien",
    'two%20words',
    'a%2Cb',
    '50%25',
    'say%20%22hi%22',
    'caf%C3%A9',
  ];

  test.each([
    ['Cache-Tag', 'cache-tag', ','],
    ['Surrogate-Key', 'surrogate-key', ' '],
  ] as const)(
    '%s: each tag one list item of visible ASCII, the same on the MISS and the HIT',
    async (option, header, separator) => {
      const s = await setup(createApp, { '/page': { tags: TAGS } }, { cdnTags: option });
      const miss = await s.get('/page');
      expect(miss.headers[header]).toBe(keyed('/page', SENT.join(separator), separator));
      await s.cache.idle();
      const hit = await s.get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers[header]).toBe(keyed('/page', SENT.join(separator), separator));
      expect(hit.headers[header]).toMatch(/^[\x21-\x7e ]+$/);
    },
  );

  test('10,000 tags (100 KB): the header stops at 8 KB, a Node client reads the page, every tag still revalidates', async () => {
    const tags = Array.from({ length: 10_000 }, (_, i) => `tag-${String(i).padStart(5, '0')}`);
    const s = await setup(createApp, { '/many': { tags } });
    const miss = await s.get('/many');
    expect([miss.status, miss.headers['x-isr-cache']]).toEqual([200, 'MISS']);
    const sent = String(miss.headers['cache-tag']);
    expect(Buffer.byteLength(sent)).toBeLessThanOrEqual(MAX_CDN_TAG_HEADER_BYTES);
    // The path keys first, then the tags in order, as far as they go.
    const items = sent.split(',');
    expect(items.slice(0, 3)).toEqual(['page:/many', 'layout:/', 'layout:/many']);
    expect(items.slice(3)).toEqual(tags.slice(0, items.length - 3));
    expect(Buffer.byteLength(sent) + 11).toBeGreaterThan(MAX_CDN_TAG_HEADER_BYTES);
    await s.cache.idle();
    const hit = await s.get('/many');
    expect([hit.status, hit.headers['x-isr-cache'], hit.headers['cache-tag']]).toEqual([
      200,
      'HIT',
      sent,
    ]);
    // A tag left out of the header still invalidates the page here.
    await s.cache.revalidateTag('tag-09999');
    expect((await s.get('/many')).headers['x-isr-cache']).toBe('STALE');
  });
});

describe('cdnTag: the encoding', () => {
  test.each([
    ['posts', 'posts'],
    ['post-café', 'post-caf%C3%A9'],
    ['a b', 'a%20b'],
    ['a,b', 'a%2Cb'],
    ['100%', '100%25'],
    ['"q"', '%22q%22'],
    ['Ω', '%CE%A9'],
    ['\u0085', '%C2%85'], // a C1 control: above ASCII, encoded like any other
  ])('%j → %j', (tag, encoded) => {
    expect(cdnTag(tag)).toBe(encoded);
  });

  test.each([
    ['CR/LF', 'a\r\nb'],
    ['NUL', 'a\0b'],
    ['DEL', 'a\x7fb'],
    ['blank', '   '],
    ['a lone surrogate', 'bad-\ud800'],
    ['over 1024 bytes once encoded', 'é'.repeat(200)], // 400 bytes of UTF-8, 1200 encoded
  ])('%s: not sent', (_label, tag) => {
    expect(cdnTag(tag)).toBeUndefined();
  });

  test('1024 bytes once encoded is sent; 1025 is not', () => {
    expect(cdnTag('x'.repeat(1024))).toBe('x'.repeat(1024));
    expect(cdnTag('x'.repeat(1025))).toBeUndefined();
    expect(cdnTag(`${'x'.repeat(1018)}é`)).toBe(`${'x'.repeat(1018)}%C3%A9`);
    expect(cdnTag(`${'x'.repeat(1019)}é`)).toBeUndefined();
  });
});

describe('warnings for tags left out', () => {
  /** The codes of the warnings a recorder got, in order. */
  const codes = (warnings: unknown[][]) =>
    warnings.map((args) => /\b(ISR_[A-Z_]+)\b/.exec(String(args[0]))?.[1] ?? String(args[0]));

  test('ISR_TAG_NOT_SENT, once, naming the page; the long tag still revalidates', async () => {
    const long = `long-${'x'.repeat(1100)}`;
    const s = await setup(expressVersions[0][1], {
      '/a': { tags: ['ok', 'a\r\nb', long] },
      '/b': { tags: ['a\0b'] },
    });
    const a = await s.get('/a');
    expect([a.status, a.headers['cache-tag']]).toEqual([200, keyed('/a', 'ok')]);
    const b = await s.get('/b');
    expect([b.status, b.headers['cache-tag']]).toEqual([200, keyed('/b', '')]);
    await s.cache.idle();
    for (const url of ['/a', '/b']) expect((await s.get(url)).headers['x-isr-cache']).toBe('HIT');
    expect(codes(s.recorder.warnings)).toEqual(['ISR_TAG_NOT_SENT']);
    const text = String(s.recorder.warnings[0][0]);
    expect(text).toMatch(/^\[express-isr\] ISR_TAG_NOT_SENT: \/a has 2 tags left out/);
    expect(text).toContain('"a\\r\\nb"'); // escaped: a log line is never split by a tag
    expect(text).not.toContain('\n');
    expect(text).toContain('(README: #isr_tag_not_sent)');

    await s.cache.revalidateTag(long);
    expect((await s.get('/a')).headers['x-isr-cache']).toBe('STALE');
  });

  test('ISR_TAGS_TRUNCATED, once, however many pages overflow', async () => {
    const tags = Array.from({ length: 2_000 }, (_, i) => `tag-${i}`);
    const s = await setup(expressVersions[0][1], { '/a': { tags }, '/b': { tags } });
    for (const url of ['/a', '/b', '/a']) expect((await s.get(url)).status).toBe(200);
    await s.cache.idle();
    expect(codes(s.recorder.warnings)).toEqual(['ISR_TAGS_TRUNCATED']);
    const text = String(s.recorder.warnings[0][0]);
    expect(text).toMatch(/^\[express-isr\] ISR_TAGS_TRUNCATED: \/a has more tags than fit/);
    expect(text).toContain('(README: #isr_tags_truncated)');
  });

  test('a page replayed by a cache that did not render it warns too (the replay plans the header itself)', async () => {
    const lib = freshLib();
    const store = new lib.MemoryStore();
    const first = errorRecorder();
    const second = errorRecorder();
    const tagged = (cache: Cache) => {
      const app = expressVersions[0][1]();
      app.use(cache);
      app.get('/page', (_req: Request, res: Response) => {
        res.isr({ tags: ['ok', 'a\nb'] });
        res.send('<h1>page</h1>');
      });
      return app;
    };
    const clock = fakeClock();
    const renderer = lib.isr({
      now: clock.now,
      store,
      logger: first.logger,
      silence: ['ISR_TAG_NOT_SENT'],
    });
    cleanups.push(() => renderer.close());
    const replayer = lib.isr({ now: clock.now, store, logger: second.logger });
    cleanups.push(() => replayer.close());
    const rendering = await listen(tagged(renderer));
    cleanups.push(rendering.close);
    const replaying = await listen(tagged(replayer));
    cleanups.push(replaying.close);

    expect((await rendering.get('/page')).headers['x-isr-cache']).toBe('MISS');
    await renderer.idle();
    expect(first.warnings).toEqual([]); // silenced for that cache
    const hit = await replaying.get('/page');
    expect([hit.status, hit.headers['x-isr-cache'], hit.headers['cache-tag']]).toEqual([
      200,
      'HIT',
      keyed('/page', 'ok'),
    ]);
    expect(codes(second.warnings)).toEqual(['ISR_TAG_NOT_SENT']);
  });

  test('both codes have their README entry', () => {
    const readme = readFileSync(path.join(__dirname, '..', '..', 'README.md'), 'utf8');
    for (const code of ['ISR_TAG_NOT_SENT', 'ISR_TAGS_TRUNCATED']) {
      const entry = new RegExp(`^#### ${code}$`, 'm').test(readme);
      expect({ code, entry }).toEqual({ code, entry: true });
    }
  });
});
