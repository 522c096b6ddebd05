/**
 * The fast path in front of the app: `http.createServer(cache.handler(app))`
 * answers fresh pages (and their 304s and HEADs) from memory before the app sees the request,
 * with the same status, body and headers as the middleware would send, and hands everything
 * else (STALE, MISS, BYPASS) to the app unchanged. With Redis it answers from the in-process
 * copy (L1) once that serves, and never without it. `handler()` also tells the cache which app
 * to render through, so `prerender()` works before the first request.
 */
import type { IncomingMessage, RequestListener } from 'node:http';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrMiddleware, type IsrOptions, isRegeneration, isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { expressVersions } from '../helpers/express';
import { type RawResponse, rawRequest } from '../helpers/http';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { recordedCache } from '../helpers/site';
import { fakeClock, sleep } from '../helpers/time';

/** Big enough to be stored with br and gzip variants (the default threshold is 1024 bytes). */
const BIG_PAGE = `<!doctype html><main>${'<p>a paragraph worth compressing</p>'.repeat(120)}</main>`;

/** The headers a fast-path HIT must send exactly as the middleware's HIT does. */
const COMPARED_HEADERS = [
  'etag',
  'date',
  'age',
  'cache-control',
  'cache-status',
  'cache-tag',
  'vary',
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'x-isr-cache',
];

function comparable(response: RawResponse) {
  return {
    status: response.status,
    body: response.body.toString('base64'),
    headers: Object.fromEntries(COMPARED_HEADERS.map((name) => [name, response.headers[name]])),
  };
}

describe.each(expressVersions)('the fast path in front of the app (%s)', (_name, createApp) => {
  const opened: IsrMiddleware[] = [];
  afterEach(async () => {
    for (const cache of opened.splice(0)) await cache.close();
  });

  /**
   * An app with a counter BEFORE `app.use(cache)`: it sees every visitor's request the app
   * receives (never the cache's own renders), so a fast-path hit leaves it unchanged.
   */
  function setup(options: IsrOptions = {}) {
    const { clock, recorder, cache } = recordedCache(options);
    opened.push(cache);
    const app = createApp();
    let seen = 0;
    const renders = new Map<string, number>();
    const rendered = (path: string) => {
      const n = (renders.get(path) ?? 0) + 1;
      renders.set(path, n);
      return n;
    };
    /** What reached the app (before the middleware), to prove it arrived unchanged. */
    const received: { method: string; url: string; trace?: string }[] = [];
    let postedBody: string | undefined;
    app.use((req, _res, next) => {
      if (!isRegeneration(req)) {
        seen += 1;
        received.push({ method: req.method, url: req.url, trace: req.get('x-trace') });
      }
      next();
    });
    app.use(cache);
    app.get('/page', (_req, res) => {
      const n = rendered('/page');
      res.isr({ tags: ['posts'] });
      res.set('Content-Language', 'en');
      res.type('html').send(`<h1>page render ${n}</h1>`);
    });
    app.post('/page', async (req, res) => {
      rendered('/page (POST)');
      postedBody = await readBody(req);
      res.type('html').send('<p>posted</p>');
    });
    app.get('/big', (_req, res) => {
      const n = rendered('/big');
      res.type('html').send(`${BIG_PAGE}<!-- ${n} -->`);
    });
    app.get('/other', (_req, res) => {
      const n = rendered('/other');
      res.type('html').send(`<h1>other render ${n}</h1>`);
    });
    const fast = cache.handler(app);
    return {
      app,
      cache,
      clock,
      fast,
      received,
      postedBody: () => postedBody,
      recorder,
      seen: () => seen,
      renders: (path: string) => renders.get(path) ?? 0,
    };
  }

  /** MISS through the app, then stored. */
  async function warm(listener: RequestListener, cache: IsrMiddleware, path: string) {
    const miss = await rawRequest(listener, path);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
  }

  test('a fresh page is answered without the app, with the same status, body and headers as the middleware', async () => {
    const { app, cache, clock, fast, seen, renders } = setup();
    await warm(app, cache, '/page');
    clock.advanceSeconds(7); // a non-zero Age

    const direct = await rawRequest(app, '/page');
    expect(direct.headers['x-isr-cache']).toBe('HIT');
    const seenBefore = seen();

    const viaFastPath = await rawRequest(fast, '/page');
    expect(seen()).toBe(seenBefore); // the app never saw it
    expect(renders('/page')).toBe(1);

    expect(viaFastPath.status).toBe(200);
    expect(viaFastPath.body.toString()).toBe('<h1>page render 1</h1>');
    expect(viaFastPath.headers['x-isr-cache']).toBe('HIT');
    expect(viaFastPath.headers.age).toBe('7');
    expect(viaFastPath.headers.etag).toEqual(expect.any(String));
    expect(viaFastPath.headers['cache-tag']).toBe('page:/page,layout:/,layout:/page,posts');
    expect(viaFastPath.headers['cache-status']).toEqual(expect.stringMatching(/hit/));
    expect(viaFastPath.headers['cache-control']).toEqual(expect.stringContaining('s-maxage=60'));
    expect(viaFastPath.headers['content-type']).toMatch(/^text\/html/);
    expect(comparable(viaFastPath)).toEqual(comparable(direct));
  });

  test.each([
    ['br', 'br'],
    ['gzip', 'gzip'],
    ['identity', undefined],
  ])(
    'Accept-Encoding %s: the same variant and headers as the middleware, from the fast path',
    async (coding, expected) => {
      const { app, cache, clock, fast, seen } = setup();
      await warm(app, cache, '/big');
      clock.advanceSeconds(3);

      const headers = { 'accept-encoding': coding };
      const direct = await rawRequest(app, '/big', headers);
      const seenBefore = seen();
      const viaFastPath = await rawRequest(fast, '/big', headers);
      expect(seen()).toBe(seenBefore);

      expect(viaFastPath.headers['x-isr-cache']).toBe('HIT');
      expect(viaFastPath.headers['content-encoding']).toBe(expected);
      expect(viaFastPath.headers.vary).toMatch(/accept-encoding/i);
      expect(comparable(viaFastPath)).toEqual(comparable(direct));
    },
  );

  test('a matching If-None-Match gets a 304 from the fast path, like from the middleware', async () => {
    const { app, cache, fast, seen } = setup();
    await warm(app, cache, '/page');
    const page = await rawRequest(fast, '/page');
    const etag = String(page.headers.etag);

    const direct = await rawRequest(app, '/page', { 'if-none-match': etag });
    expect(direct.status).toBe(304);
    const seenBefore = seen();
    const viaFastPath = await rawRequest(fast, '/page', { 'if-none-match': etag });
    expect(seen()).toBe(seenBefore);

    expect(viaFastPath.status).toBe(304);
    expect(viaFastPath.body.length).toBe(0);
    expect(viaFastPath.headers.etag).toBe(etag);
    expect(viaFastPath.headers['content-type']).toBeUndefined();
    expect(viaFastPath.headers['x-isr-cache']).toBe('HIT');
    expect(comparable(viaFastPath)).toEqual(comparable(direct));

    // A validator that does not match gets the page.
    const other = await rawRequest(fast, '/page', { 'if-none-match': '"something-else"' });
    expect(other.status).toBe(200);
    expect(other.body.toString()).toBe('<h1>page render 1</h1>');
    expect(seen()).toBe(seenBefore);
  });

  test('HEAD of a fresh page: the GET headers, no body, from the fast path', async () => {
    const { app, cache, fast, seen } = setup();
    await warm(app, cache, '/page');
    const get = await rawRequest(fast, '/page');
    const seenBefore = seen();

    const head = await rawRequest(fast, '/page', {}, 'HEAD');
    expect(seen()).toBe(seenBefore);
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['x-isr-cache']).toBe('HIT');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.headers['content-type']).toBe(get.headers['content-type']);
  });

  test('a STALE page goes to the app, which serves it and regenerates; the new page then comes from the fast path', async () => {
    const { cache, clock, fast, seen, renders } = setup();
    await warm(fast, cache, '/page');
    clock.advanceSeconds(61);

    const before = seen();
    const stale = await request(fast).get('/page');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>page render 1</h1>');
    expect(seen()).toBe(before + 1);
    await cache.idle();
    expect(renders('/page')).toBe(2);

    const fresh = await request(fast).get('/page');
    expect(fresh.headers['x-isr-cache']).toBe('HIT');
    expect(fresh.text).toBe('<h1>page render 2</h1>');
    expect(seen()).toBe(before + 1);
  });

  test('a MISS goes to the app unchanged: method, URL and headers as the client sent them', async () => {
    const { cache, fast, seen, renders, received } = setup();
    const miss = await request(fast).get('/other?b=2&a=1').set('X-Trace', 'trace-1');
    expect(miss.status).toBe(200);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toBe('<h1>other render 1</h1>');
    expect(seen()).toBe(1);
    expect(renders('/other')).toBe(1);
    expect(received).toEqual([{ method: 'GET', url: '/other?b=2&a=1', trace: 'trace-1' }]);
    await cache.idle();
  });

  test('a POST to a fresh page goes to the app with its body intact (BYPASS)', async () => {
    const { app, cache, fast, seen, renders, received, postedBody } = setup();
    await warm(app, cache, '/page');
    const before = seen();

    const posted = await request(fast)
      .post('/page')
      .set('Content-Type', 'text/plain')
      .set('X-Trace', 'trace-2')
      .send('hello=world');
    expect(posted.status).toBe(200);
    expect(posted.text).toBe('<p>posted</p>');
    expect(posted.headers['x-isr-cache']).toBe('BYPASS');
    expect(seen()).toBe(before + 1);
    expect(renders('/page (POST)')).toBe(1);
    expect(received.at(-1)).toEqual({ method: 'POST', url: '/page', trace: 'trace-2' });
    expect(postedBody()).toBe('hello=world');
    await cache.idle();
  });

  test('an Authorization-bearing GET of a fresh page goes to the app and is rendered (BYPASS)', async () => {
    const { app, cache, fast, seen, renders } = setup();
    await warm(app, cache, '/page');
    const before = seen();

    const personal = await request(fast).get('/page').set('Authorization', 'Bearer abc');
    expect(personal.headers['x-isr-cache']).toBe('BYPASS');
    expect(personal.text).toBe('<h1>page render 2</h1>');
    expect(seen()).toBe(before + 1);
    expect(renders('/page')).toBe(2);

    // Everyone else still gets the stored page, from the fast path.
    const anonymous = await request(fast).get('/page');
    expect(anonymous.headers['x-isr-cache']).toBe('HIT');
    expect(anonymous.text).toBe('<h1>page render 1</h1>');
    expect(seen()).toBe(before + 1);
  });

  test('a request the bypass option picks goes to the app and is rendered (BYPASS)', async () => {
    const { app, cache, fast, seen, renders } = setup({
      bypass: (req: IncomingMessage) => req.headers['x-preview'] === '1',
    });
    await warm(app, cache, '/page');
    const before = seen();

    const preview = await request(fast).get('/page').set('X-Preview', '1');
    expect(preview.headers['x-isr-cache']).toBe('BYPASS');
    expect(preview.text).toBe('<h1>page render 2</h1>');
    expect(seen()).toBe(before + 1);
    expect(renders('/page')).toBe(2);

    const normal = await request(fast).get('/page');
    expect(normal.headers['x-isr-cache']).toBe('HIT');
    expect(seen()).toBe(before + 1);
  });

  test('handler(app) tells the cache which app to render through: prerender works before any request', async () => {
    const { cache, fast, seen, renders } = setup();
    const results = await cache.prerender(['/page']);
    expect(results).toEqual([{ path: '/page', outcome: 'stored' }]);
    expect(renders('/page')).toBe(1);

    const hit = await request(fast).get('/page');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>page render 1</h1>');
    expect(seen()).toBe(0);
    expect(renders('/page')).toBe(1);
  });

  test('handler() with something that is not a request handler throws a TypeError', () => {
    const cache = isr();
    opened.push(cache);
    expect(() => cache.handler('x' as never)).toThrow(TypeError);
    expect(() => cache.handler(undefined as never)).toThrow(/app/);
  });
});

describe.each(expressVersions)('the fast path with Redis (%s)', (_name, createApp) => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  function setup(l1: boolean) {
    const keyv = new Keyv({
      store: new KeyvRedis(REDIS_URL),
      namespace: uniqueNamespace('fast-path'),
      useKeyPrefix: false,
    });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    const clock = fakeClock();
    const recorder = errorRecorder();
    const cache = isr({
      store: keyv,
      l1,
      now: clock.now,
      onError: recorder.onError,
      logger: recorder.logger,
    });
    cleanups.push(() => cache.close());
    const app = createApp();
    let seen = 0;
    let renders = 0;
    app.use((req, _res, next) => {
      if (!isRegeneration(req)) seen += 1;
      next();
    });
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.type('html').send(`<h1>redis render ${renders}</h1>`);
    });
    return { cache, fast: cache.handler(app), seen: () => seen, renders: () => renders };
  }

  test('with L1, a fresh page is answered by the fast path once L1 serves it', async () => {
    const { cache, fast, seen, renders } = setup(true);
    const miss = await rawRequest(fast, '/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();

    // L1 serves once its events are known to flow: until then hits go through the app.
    const deadline = Date.now() + 5000;
    for (;;) {
      const before = seen();
      const hit = await rawRequest(fast, '/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      if (seen() === before) break;
      if (Date.now() > deadline) {
        throw new Error('the fast path never answered from L1 within 5 s');
      }
      await sleep(20);
    }

    const before = seen();
    for (let i = 0; i < 5; i += 1) {
      const hit = await rawRequest(fast, '/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.body.toString()).toBe('<h1>redis render 1</h1>');
    }
    expect(seen()).toBe(before);
    expect(renders()).toBe(1);
  });

  test('with l1: false, every request goes through the app (hits come from Redis)', async () => {
    const { cache, fast, seen, renders } = setup(false);
    const miss = await rawRequest(fast, '/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();

    const before = seen();
    for (let i = 0; i < 5; i += 1) {
      const hit = await rawRequest(fast, '/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.body.toString()).toBe('<h1>redis render 1</h1>');
      await sleep(10);
    }
    expect(seen()).toBe(before + 5);
    expect(renders()).toBe(1);
  });
});

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

describe.each(expressVersions)('the fast path, odd inputs (%s)', (_name, createApp) => {
  test('a page whose app set Cache-Tag itself gets one Cache-Tag from the fast path, as from the middleware', async () => {
    const cache = isr();
    try {
      const app = createApp();
      app.use(cache);
      app.get('/page', (_req, res) => {
        res.append('Cache-Tag', 'posts');
        res.append('Cache-Tag', 'post-1');
        res.type('html').send('<h1>page</h1>');
      });
      await rawRequest(app, '/page'); // MISS
      await cache.idle();
      const viaMiddleware = await rawRequest(app, '/page');
      const viaFastPath = await rawRequest(cache.handler(app), '/page');
      expect(viaFastPath.headers['x-isr-cache']).toBe('HIT');
      // Node joins repeated headers with ", ": a second Cache-Tag line would show here.
      const keys = 'page:/page,layout:/,layout:/page';
      expect(viaMiddleware.headers['cache-tag']).toBe(`${keys},posts,post-1`);
      expect(viaFastPath.headers['cache-tag']).toBe(`${keys},posts,post-1`);
    } finally {
      await cache.close();
    }
  });

  test('through app.use(cache) too, a key function that throws is reported, and the app answers, uncached', async () => {
    const recorder = errorRecorder();
    const cache = isr({
      onError: recorder.onError,
      logger: recorder.logger,
      key: () => {
        throw new Error('the key function is broken');
      },
    });
    try {
      const app = createApp();
      app.use(cache);
      app.get('/page', (_req, res) => {
        res.type('html').send('<h1>from the app</h1>');
      });
      for (let i = 0; i < 2; i += 1) {
        const response = await rawRequest(app, '/page');
        expect(response.status).toBe(200);
        expect(response.body.toString()).toBe('<h1>from the app</h1>');
        expect(response.headers['x-isr-cache']).toBeUndefined();
      }
      expect(recorder.errors.map((e) => e.error.message)).toEqual([
        'the key function is broken',
        'the key function is broken',
      ]);
    } finally {
      await cache.close();
    }
  });

  test('a bypass function that throws on the bare request is reported, and the app answers', async () => {
    const recorder = errorRecorder();
    const cache = isr({
      onError: recorder.onError,
      logger: recorder.logger,
      // Works through app.use(cache), where req.path is Express's; undefined before Express.
      bypass: (req) => (req as unknown as { path: string }).path.startsWith('/admin'),
    });
    try {
      const app = createApp();
      app.use((_req, res) => {
        res.type('html').send('<h1>from the app</h1>');
      });
      const response = await rawRequest(cache.handler(app), '/page');
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('<h1>from the app</h1>');
      expect(recorder.errors).toHaveLength(1);
      expect(recorder.errors[0].error).toBeInstanceOf(TypeError);
    } finally {
      await cache.close();
    }
  });
});
