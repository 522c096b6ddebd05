/**
 * RFC 9111 behaviour of the cache as a client sees it: validators (ETag, Last-Modified, 304s),
 * Date and Age, the Cache-Control sent to CDNs, br/gzip variants (alone and next to the
 * `compression` middleware), Vary, hop-by-hop headers, invalidation by unsafe methods, HEAD.
 */
import zlib from 'node:zlib';
import compression from 'compression';
import type { Express, Request, Response } from 'express';
import request from 'supertest';
import { type IsrOptions, isr, MemoryStore } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { decodeBody, rawRequest } from '../helpers/http';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

const START = Date.UTC(2026, 0, 1);
/** A page well over the 1 KB compression threshold, and compressible. */
const BIG_PAGE = `<!doctype html><h1>big</h1>${'<p>Lorem ipsum dolor sit amet.</p>\n'.repeat(150)}`;
const SMALL_PAGE = '<h1>small</h1>';

describe.each(expressVersions)('HTTP semantics (%s)', (_name, createApp) => {
  /** An app with the cache mounted and one counted route at `/page`. */
  function setup(
    route: (req: Request, res: Response, renders: number) => void,
    options: IsrOptions = {},
  ) {
    const clock = fakeClock(START);
    const cache = isr({ now: clock.now, ...options });
    cleanups.push(() => cache.close());
    const app = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (req, res) => {
      renders += 1;
      route(req, res, renders);
    });
    return { app, cache, clock, renders: () => renders };
  }

  /** A MISS, then waits for it to be stored. */
  async function warm(app: Express, cache: { idle(): Promise<void> }, path = '/page') {
    const miss = await request(app).get(path);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    return miss;
  }

  describe('ETag', () => {
    test("the app's own ETag (Express's weak one) is replayed and earns a 304 on the HIT", async () => {
      const { app, cache } = setup((_req, res) => {
        res.send('<h1>hello</h1>');
      });
      const miss = await warm(app, cache);
      const etag = miss.headers.etag;
      expect(etag).toMatch(/^W\//);

      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers.etag).toBe(etag);

      const conditional = await request(app).get('/page').set('If-None-Match', etag);
      expect(conditional.status).toBe(304);
      expect(conditional.headers['x-isr-cache']).toBe('HIT');
      expect(conditional.text).toBeFalsy();
      expect(conditional.headers.etag).toBe(etag);
    });

    test('a streamed page without an ETag gets a strong one, the same on every replay', async () => {
      const { app, cache, clock } = setup((_req, res) => {
        res.type('html');
        res.write('<h1>streamed');
        res.end(' page</h1>');
      });
      await warm(app, cache);
      const first = await request(app).get('/page');
      clock.advanceSeconds(5);
      const second = await request(app).get('/page');
      expect(first.headers['x-isr-cache']).toBe('HIT');
      expect(second.headers['x-isr-cache']).toBe('HIT');
      expect(first.text).toBe('<h1>streamed page</h1>');
      expect(first.headers.etag).toMatch(/^"[^"]+"$/);
      expect(second.headers.etag).toBe(first.headers.etag);

      const conditional = await request(app).get('/page').set('If-None-Match', first.headers.etag);
      expect(conditional.status).toBe(304);
    });

    test("with app.set('etag', false) the MISS already carries the strong ETag the HITs carry", async () => {
      const { app, cache } = setup((_req, res) => {
        res.send('<h1>no etag from express</h1>');
      });
      app.set('etag', false);
      const miss = await warm(app, cache);
      expect(miss.headers.etag).toMatch(/^"[^"]+"$/);

      const hit1 = await request(app).get('/page');
      const hit2 = await request(app).get('/page');
      expect(hit1.headers['x-isr-cache']).toBe('HIT');
      expect(hit1.headers.etag).toBe(miss.headers.etag);
      expect(hit2.headers.etag).toBe(miss.headers.etag);

      const conditional = await request(app).get('/page').set('If-None-Match', miss.headers.etag);
      expect(conditional.status).toBe(304);
      expect(conditional.headers['x-isr-cache']).toBe('HIT');
    });

    test('If-None-Match matching on the MISS itself gets a 304, and the full page is stored', async () => {
      const { app, cache, renders } = setup((_req, res) => {
        res.set('ETag', '"v1"');
        res.send('<h1>version 1</h1>');
      });
      const miss = await request(app).get('/page').set('If-None-Match', '"v1"');
      expect(miss.status).toBe(304);
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      expect(miss.headers.etag).toBe('"v1"');
      expect(miss.text).toBeFalsy();
      await cache.idle();

      const hit = await request(app).get('/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>version 1</h1>');
      expect(renders()).toBe(1);
    });

    test('If-None-Match: * gets a 304; a non-matching one gets the page', async () => {
      const { app, cache } = setup((_req, res) => {
        res.send('<h1>star</h1>');
      });
      await warm(app, cache);

      const star = await request(app).get('/page').set('If-None-Match', '*');
      expect(star.status).toBe(304);
      expect(star.text).toBeFalsy();

      const other = await request(app).get('/page').set('If-None-Match', '"something-else"');
      expect(other.status).toBe(200);
      expect(other.headers['x-isr-cache']).toBe('HIT');
      expect(other.text).toBe('<h1>star</h1>');
    });
  });

  describe('Last-Modified', () => {
    const lastModified = 'Wed, 24 Dec 2025 10:00:00 GMT';

    test("the app's Last-Modified is kept; If-Modified-Since equal or later is a 304, earlier a 200", async () => {
      const { app, cache } = setup((_req, res) => {
        res.set('Last-Modified', lastModified);
        res.send('<h1>dated</h1>');
      });
      const miss = await warm(app, cache);
      expect(miss.headers['last-modified']).toBe(lastModified);

      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['last-modified']).toBe(lastModified);

      const equal = await request(app).get('/page').set('If-Modified-Since', lastModified);
      expect(equal.status).toBe(304);
      expect(equal.headers['x-isr-cache']).toBe('HIT');
      expect(equal.text).toBeFalsy();

      const later = await request(app)
        .get('/page')
        .set('If-Modified-Since', 'Thu, 25 Dec 2025 10:00:00 GMT');
      expect(later.status).toBe(304);

      const earlier = await request(app)
        .get('/page')
        .set('If-Modified-Since', 'Tue, 23 Dec 2025 10:00:00 GMT');
      expect(earlier.status).toBe(200);
      expect(earlier.text).toBe('<h1>dated</h1>');
    });
  });

  describe('conditional requests on a MISS never empty the stored page', () => {
    test('If-None-Match: "whatever" on the first request, then a plain HIT with the full body', async () => {
      const { app, cache, renders } = setup((_req, res) => {
        res.send('<h1>full body</h1>');
      });
      const first = await request(app).get('/page').set('If-None-Match', '"whatever"');
      expect(first.status).toBe(200);
      expect(first.text).toBe('<h1>full body</h1>');
      await cache.idle();

      const hit = await request(app).get('/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>full body</h1>');
      expect(renders()).toBe(1);
    });

    test('If-None-Match: * on the first request, then a plain HIT with the full body', async () => {
      const { app, cache } = setup((_req, res) => {
        res.send('<h1>full body</h1>');
      });
      const first = await request(app).get('/page').set('If-None-Match', '*');
      expect(first.status).toBe(304);
      await cache.idle();

      const hit = await request(app).get('/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>full body</h1>');
    });

    test('a later If-Modified-Since on the first request, then a plain HIT with the full body', async () => {
      const { app, cache } = setup((_req, res) => {
        res.set('Last-Modified', 'Wed, 24 Dec 2025 10:00:00 GMT');
        res.send('<h1>full body</h1>');
      });
      const first = await request(app)
        .get('/page')
        .set('If-Modified-Since', 'Thu, 25 Dec 2025 10:00:00 GMT');
      expect(first.status).toBe(304);
      await cache.idle();

      const hit = await request(app).get('/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>full body</h1>');
    });
  });

  describe('Date and Age', () => {
    test('replays carry the generation time as Date and count Age from it', async () => {
      const { app, cache, clock } = setup((_req, res) => {
        res.send('<h1>aged</h1>');
      });
      await warm(app, cache);
      const generated = new Date(START).toUTCString();

      clock.advanceSeconds(5);
      const five = await request(app).get('/page');
      expect(five.headers['x-isr-cache']).toBe('HIT');
      expect(five.headers.date).toBe(generated);
      expect(five.headers.age).toBe('5');

      clock.advanceSeconds(7);
      const twelve = await request(app).get('/page');
      expect(twelve.headers['x-isr-cache']).toBe('HIT');
      expect(twelve.headers.date).toBe(generated);
      expect(twelve.headers.age).toBe('12');
    });
  });

  describe('Cache-Control for shared caches in front', () => {
    test('a HIT carries s-maxage=<window> (Age counts the seconds spent, RFC 9111 §4.2.3), stale-while-revalidate=<maxStale>, stale-if-error=<maxStale + staleIfError>', async () => {
      const { app, cache, clock } = setup(
        (_req, res) => {
          res.send('<h1>cc</h1>');
        },
        { revalidate: 60, maxStale: 600, staleIfError: 3000 },
      );
      await warm(app, cache);
      clock.advanceSeconds(20);
      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers.age).toBe('20');
      const directives = directiveList(hit.headers['cache-control']);
      expect(directives).toEqual([
        's-maxage=60',
        'stale-while-revalidate=600',
        'stale-if-error=3600',
      ]);
    });

    test('a STALE replay carries s-maxage=0', async () => {
      const { app, cache, clock } = setup(
        (_req, res) => {
          res.send('<h1>cc</h1>');
        },
        { revalidate: 60, maxStale: 600, staleIfError: 0 },
      );
      await warm(app, cache);
      clock.advanceSeconds(61);
      const stale = await request(app).get('/page');
      expect(stale.headers['x-isr-cache']).toBe('STALE');
      const directives = directiveList(stale.headers['cache-control']);
      // staleIfError 0: no stale-if-error at all.
      expect(directives).toEqual(['s-maxage=0', 'stale-while-revalidate=600']);
      await cache.idle();
    });

    test("the app's own directives are kept and merged", async () => {
      const { app, cache, clock } = setup(
        (_req, res) => {
          res.set('Cache-Control', 'public, max-age=30');
          res.send('<h1>cc</h1>');
        },
        { revalidate: 60, maxStale: false },
      );
      const miss = await warm(app, cache);
      const missDirectives = directiveList(miss.headers['cache-control']);
      expect(missDirectives).toEqual(
        expect.arrayContaining([
          'public',
          'max-age=30',
          's-maxage=60',
          // maxStale false: "for ever", written as a year (numbers there must be finite).
          'stale-while-revalidate=31536000',
        ]),
      );

      clock.advanceSeconds(10);
      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      const directives = directiveList(hit.headers['cache-control']);
      expect(directives).toEqual(
        expect.arrayContaining([
          'public',
          'max-age=30',
          's-maxage=60',
          'stale-while-revalidate=31536000',
        ]),
      );
      expect(directives.filter((d) => d.startsWith('s-maxage'))).toHaveLength(1);
    });

    test("cacheControl: false leaves the app's header unchanged and adds none", async () => {
      const clock = fakeClock(START);
      const cache = isr({ now: clock.now, cacheControl: false });
      cleanups.push(() => cache.close());
      const app = createApp();
      app.use(cache);
      app.get('/own', (_req, res) => {
        res.set('Cache-Control', 'public, max-age=30');
        res.send('<h1>own</h1>');
      });
      app.get('/none', (_req, res) => {
        res.send('<h1>none</h1>');
      });
      const ownMiss = await warm(app, cache, '/own');
      const noneMiss = await warm(app, cache, '/none');
      expect(ownMiss.headers['cache-control']).toBe('public, max-age=30');
      expect(noneMiss.headers['cache-control']).toBeUndefined();

      const ownHit = await request(app).get('/own');
      const noneHit = await request(app).get('/none');
      expect(ownHit.headers['x-isr-cache']).toBe('HIT');
      expect(ownHit.headers['cache-control']).toBe('public, max-age=30');
      expect(noneHit.headers['x-isr-cache']).toBe('HIT');
      expect(noneHit.headers['cache-control']).toBeUndefined();
    });

    test('a custom cacheControl function builds the header', async () => {
      const calls: { age: number; state: string; revalidate: number | false }[] = [];
      const { app, cache, clock } = setup(
        (_req, res) => {
          res.send('<h1>custom</h1>');
        },
        {
          revalidate: 60,
          cacheControl: ({ revalidate, age, state }) => {
            calls.push({ revalidate, age, state });
            return `public, max-age=${revalidate === false ? 0 : revalidate - age}, x-state=${state}`;
          },
        },
      );
      await warm(app, cache);
      clock.advanceSeconds(15);
      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['cache-control']).toBe('public, max-age=45, x-state=HIT');
      expect(calls).toContainEqual({ revalidate: 60, age: 15, state: 'HIT' });
    });

    test("BYPASS responses never get the cache's Cache-Control", async () => {
      const { app } = setup((_req, res) => {
        res.send('<h1>page</h1>');
      });
      app.post('/page', (_req, res) => {
        res.send('<h1>posted</h1>');
      });
      app.get('/cookie', (_req, res) => {
        res.cookie('sid', 'abc');
        res.send('<h1>personal</h1>');
      });

      const post = await request(app).post('/page');
      expect(post.headers['x-isr-cache']).toBe('BYPASS');
      expect(post.headers['cache-control']).toBeUndefined();

      const cookie = await request(app).get('/cookie');
      expect(cookie.headers['x-isr-cache']).toBe('BYPASS');
      expect(cookie.headers['set-cookie']).toBeDefined();
      expect(cookie.headers['cache-control']).toBeUndefined();

      const authorized = await request(app).get('/page').set('Authorization', 'Bearer x');
      expect(authorized.headers['x-isr-cache']).toBe('BYPASS');
      expect(authorized.headers['cache-control']).toBeUndefined();
    });
  });

  describe('br and gzip variants', () => {
    function bigPageSetup(options: IsrOptions = {}) {
      return setup((_req, res) => {
        res.send(BIG_PAGE);
      }, options);
    }

    test('Accept-Encoding: br gets the br variant, which decodes to the page', async () => {
      const { app, cache } = bigPageSetup();
      await warm(app, cache);
      const hit = await rawRequest(app, '/page', { 'Accept-Encoding': 'br' });
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['content-encoding']).toBe('br');
      expect(varyList(hit.headers.vary)).toContain('accept-encoding');
      expect(Number(hit.headers['content-length'])).toBe(hit.body.length);
      expect(hit.body.length).toBeLessThan(Buffer.byteLength(BIG_PAGE));
      expect(zlib.brotliDecompressSync(hit.body).toString()).toBe(BIG_PAGE);
    });

    test.each([
      ['gzip', 'gzip'],
      ['br;q=0, gzip', 'gzip'],
      ['gzip, deflate, br', 'br'],
    ])('Accept-Encoding: %s gets %s', async (accept, expected) => {
      const { app, cache } = bigPageSetup();
      await warm(app, cache);
      const hit = await rawRequest(app, '/page', { 'Accept-Encoding': accept });
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['content-encoding']).toBe(expected);
      expect(varyList(hit.headers.vary)).toContain('accept-encoding');
      expect(decodeBody(hit).toString()).toBe(BIG_PAGE);
    });

    test.each([
      ['no Accept-Encoding', {}],
      ['Accept-Encoding: identity', { 'Accept-Encoding': 'identity' }],
    ])('%s gets the identity body, still with Vary: Accept-Encoding', async (_label, headers) => {
      const { app, cache } = bigPageSetup();
      await warm(app, cache);
      const hit = await rawRequest(app, '/page', headers);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['content-encoding']).toBeUndefined();
      expect(varyList(hit.headers.vary)).toContain('accept-encoding');
      expect(hit.body.toString()).toBe(BIG_PAGE);
      expect(hit.headers['content-length']).toBe(String(Buffer.byteLength(BIG_PAGE)));
    });

    test('a page under 1 KB has no variants', async () => {
      const { app, cache } = setup((_req, res) => {
        res.send(SMALL_PAGE);
      });
      await warm(app, cache);
      for (const accept of ['br', 'gzip']) {
        const hit = await rawRequest(app, '/page', { 'Accept-Encoding': accept });
        expect(hit.headers['x-isr-cache']).toBe('HIT');
        expect(hit.headers['content-encoding']).toBeUndefined();
        expect(hit.body.toString()).toBe(SMALL_PAGE);
      }
    });

    test('compress: false never encodes', async () => {
      const { app, cache } = bigPageSetup({ compress: false });
      await warm(app, cache);
      for (const accept of ['br', 'gzip', 'br, gzip']) {
        const hit = await rawRequest(app, '/page', { 'Accept-Encoding': accept });
        expect(hit.headers['x-isr-cache']).toBe('HIT');
        expect(hit.headers['content-encoding']).toBeUndefined();
        expect(hit.body.toString()).toBe(BIG_PAGE);
      }
    });
  });

  describe.each([
    ['before', true],
    ['after', false],
  ])('with the compression middleware mounted %s isr()', (_where, compressionFirst) => {
    function compressedSetup() {
      const store = new MemoryStore();
      const cache = isr({ now: fakeClock(START).now, store });
      cleanups.push(() => cache.close());
      const app = createApp();
      if (compressionFirst) {
        app.use(compression({ threshold: 0 }));
        app.use(cache);
      } else {
        app.use(cache);
        app.use(compression({ threshold: 0 }));
      }
      let renders = 0;
      app.get('/page', (_req, res) => {
        renders += 1;
        res.send(BIG_PAGE);
      });
      return { app, cache, store, renders: () => renders };
    }

    test('MISS and HIT bodies decode to the page, and the stored page is not double-encoded', async () => {
      const { app, cache, store, renders } = compressedSetup();
      const miss = await rawRequest(app, '/page', { 'Accept-Encoding': 'gzip' });
      expect(miss.status).toBe(200);
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      expect(decodeBody(miss).toString()).toBe(BIG_PAGE);
      await cache.idle();

      const stored = store.get('/page') as { body: Buffer } | undefined;
      expect(stored?.body.toString()).toBe(BIG_PAGE);

      const gzipHit = await rawRequest(app, '/page', { 'Accept-Encoding': 'gzip' });
      expect(gzipHit.headers['x-isr-cache']).toBe('HIT');
      expect(gzipHit.headers['content-encoding']).toBe('gzip');
      expect(zlib.gunzipSync(gzipHit.body).toString()).toBe(BIG_PAGE);

      const brHit = await rawRequest(app, '/page', { 'Accept-Encoding': 'br' });
      expect(brHit.headers['x-isr-cache']).toBe('HIT');
      expect(decodeBody(brHit).toString()).toBe(BIG_PAGE);

      const identityHit = await rawRequest(app, '/page', { 'Accept-Encoding': 'identity' });
      expect(identityHit.headers['x-isr-cache']).toBe('HIT');
      expect(identityHit.headers['content-encoding']).toBeUndefined();
      expect(identityHit.body.toString()).toBe(BIG_PAGE);

      const viaSupertest = await request(app).get('/page');
      expect(viaSupertest.headers['x-isr-cache']).toBe('HIT');
      expect(viaSupertest.text).toBe(BIG_PAGE);
      expect(renders()).toBe(1);
    });
  });

  describe('Vary', () => {
    test('a page that varies on Accept-Language is never served to another language', async () => {
      const renderedFor: string[] = [];
      const { app, cache } = setup((req, res) => {
        const lang = req.get('accept-language') ?? 'none';
        renderedFor.push(lang);
        res.set('Vary', 'Accept-Language');
        res.send(`<h1>page in ${lang}</h1>`);
      });

      const fr = await request(app).get('/page').set('Accept-Language', 'fr');
      expect(fr.headers['x-isr-cache']).toBe('MISS');
      expect(fr.text).toBe('<h1>page in fr</h1>');
      await cache.idle();

      const de = await request(app).get('/page').set('Accept-Language', 'de');
      expect(de.headers['x-isr-cache']).toBe('MISS');
      expect(de.text).toBe('<h1>page in de</h1>');
      await cache.idle();

      const frAgain = await request(app).get('/page').set('Accept-Language', 'fr');
      expect(frAgain.headers['x-isr-cache']).toBe('HIT');
      expect(frAgain.text).toBe('<h1>page in fr</h1>');
      expect(varyList(frAgain.headers.vary)).toContain('accept-language');

      const deAgain = await request(app).get('/page').set('Accept-Language', 'de');
      expect(deAgain.headers['x-isr-cache']).toBe('HIT');
      expect(deAgain.text).toBe('<h1>page in de</h1>');
      expect(renderedFor).toEqual(['fr', 'de']);
    });
  });

  describe('headers that are never replayed', () => {
    test('headers named in Connection, Keep-Alive and Transfer-Encoding are not replayed', async () => {
      const { app, cache } = setup((_req, res) => {
        res.setHeader('Connection', 'X-Secret-Hop');
        res.setHeader('X-Secret-Hop', 'per-connection');
        res.setHeader('Keep-Alive', 'timeout=99');
        res.setHeader('Transfer-Encoding', 'chunked');
        res.setHeader('X-Kept', 'yes');
        res.type('html');
        res.write('<h1>hop');
        res.end(' by hop</h1>');
      });
      await warm(app, cache);
      const hit = await rawRequest(app, '/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.body.toString()).toBe('<h1>hop by hop</h1>');
      expect(hit.headers['x-kept']).toBe('yes');
      expect(hit.headers['x-secret-hop']).toBeUndefined();
      expect(hit.headers.connection ?? '').not.toMatch(/x-secret-hop/i);
      expect(hit.headers['keep-alive'] ?? '').not.toContain('timeout=99');
      expect(hit.headers['transfer-encoding']).toBeUndefined();
      expect(hit.headers['content-length']).toBe(String(Buffer.byteLength('<h1>hop by hop</h1>')));
    });

    test('a response with Set-Cookie is never stored, so its cookie is never replayed', async () => {
      const { app, cache, renders } = setup((_req, res, n) => {
        res.cookie('sid', `session-${n}`);
        res.send('<h1>personal</h1>');
      });
      const first = await request(app).get('/page');
      await cache.idle();
      const second = await request(app).get('/page');
      expect(first.headers['x-isr-cache']).not.toBe('HIT');
      expect(second.headers['x-isr-cache']).not.toBe('HIT');
      // Each visitor gets the cookie of the render made for them: the first, the one the cache
      // made on its MISS (which proved the page personal); the second, its own request's.
      expect(String(first.headers['set-cookie'])).toContain('session-1');
      expect(String(second.headers['set-cookie'])).toContain('session-2');
      expect(renders()).toBe(2);
    });
  });

  describe('unsafe methods invalidate their URL', () => {
    function editableSetup(options: IsrOptions = {}, editStatus = 200) {
      const clock = fakeClock(START);
      const cache = isr({ now: clock.now, ...options });
      cleanups.push(() => cache.close());
      const app = createApp();
      let version = 1;
      let renders = 0;
      app.use(cache);
      app.get('/item', (_req, res) => {
        renders += 1;
        res.send(`<h1>item v${version}</h1>`);
      });
      app.all('/item', (_req, res) => {
        if (editStatus < 400) version += 1;
        res.status(editStatus).send('done');
      });
      return { app, cache, clock, renders: () => renders };
    }

    test.each(['post', 'put', 'patch', 'delete'] as const)(
      'a successful %s marks the page stale; the next GET is STALE, then a HIT with the new page',
      async (method) => {
        const { app, cache, clock } = editableSetup();
        await warm(app, cache, '/item');
        clock.advanceSeconds(1);

        const edit = await request(app)[method]('/item');
        expect(edit.status).toBe(200);
        clock.advanceSeconds(1);

        const stale = await request(app).get('/item');
        expect(stale.headers['x-isr-cache']).toBe('STALE');
        expect(stale.text).toBe('<h1>item v1</h1>');
        await cache.idle();
        clock.advanceSeconds(1);

        const fresh = await request(app).get('/item');
        expect(fresh.headers['x-isr-cache']).toBe('HIT');
        expect(fresh.text).toBe('<h1>item v2</h1>');
      },
    );

    test('a failed POST (500) leaves the page fresh', async () => {
      const { app, cache, clock, renders } = editableSetup({}, 500);
      await warm(app, cache, '/item');
      clock.advanceSeconds(1);
      const edit = await request(app).post('/item');
      expect(edit.status).toBe(500);
      clock.advanceSeconds(1);

      const hit = await request(app).get('/item');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>item v1</h1>');
      expect(renders()).toBe(1);
    });

    test('invalidateOnUnsafe: false leaves the page fresh after a successful POST', async () => {
      const { app, cache, clock, renders } = editableSetup({ invalidateOnUnsafe: false });
      await warm(app, cache, '/item');
      clock.advanceSeconds(1);
      const edit = await request(app).post('/item');
      expect(edit.status).toBe(200);
      clock.advanceSeconds(1);

      const hit = await request(app).get('/item');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>item v1</h1>');
      await cache.idle();
      expect(renders()).toBe(1);
    });
  });

  describe('HEAD', () => {
    test('HEAD on a HIT has the headers of the GET, the full content-length and no body', async () => {
      const { app, cache, renders } = setup((_req, res) => {
        res.set('Content-Language', 'en');
        res.send(SMALL_PAGE);
      });
      await warm(app, cache);
      const get = await request(app).get('/page');
      const head = await request(app).head('/page');
      expect(head.status).toBe(200);
      expect(head.headers['x-isr-cache']).toBe('HIT');
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength(SMALL_PAGE)));
      for (const name of ['content-type', 'content-language', 'etag', 'content-length', 'date']) {
        expect(head.headers[name]).toBe(get.headers[name]);
      }
      expect(head.text).toBeFalsy();
      expect(renders()).toBe(1);

      const raw = await rawRequest(app, '/page', {}, 'HEAD');
      expect(raw.headers['x-isr-cache']).toBe('HIT');
      expect(raw.body.length).toBe(0);
    });
  });
});

function directiveList(header: string | undefined): string[] {
  return (header ?? '')
    .split(',')
    .map((d) => d.trim().toLowerCase())
    .filter((d) => d !== '');
}

function varyList(header: string | undefined): string[] {
  return directiveList(header);
}
