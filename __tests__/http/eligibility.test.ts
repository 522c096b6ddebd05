/**
 * What may be served from the cache and what may be stored into it: GET/HEAD only, HEAD
 * answered from the GET entry, Authorization bypasses,
 * uncacheable responses are passed through (BYPASS) and rendered again next time, the
 * `statuses` / `contentTypes` / `bypass` options, `res.isr({ revalidate: 0 })` — and every
 * decision logged with its reason through `debug('express-isr')`.
 */
import type { Express, Request, Response } from 'express';
import request from 'supertest';
import { type IsrOptions, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { recordDebugLines } from '../helpers/debug-lines';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

type Handler = (req: Request, res: Response) => void;

/** Lines `debug('express-isr')` writes while a test runs. */
const debugLines = recordDebugLines();

/** The debug lines that mention `path` and `reason`. */
function logged(path: string, reason: string | RegExp): string[] {
  return debugLines.filter(
    (line) =>
      line.includes(path) &&
      (typeof reason === 'string' ? line.includes(reason) : reason.test(line)),
  );
}

describe.each(expressVersions)('eligibility (%s)', (_name, createApp) => {
  function setup(handler: Handler, options: IsrOptions = {}) {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, ...options });
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.all('/page', (req, res) => {
      renders += 1;
      handler(req, res);
    });
    return { app, cache, clock, renders: () => renders };
  }

  const html: Handler = (_req, res) => {
    res.send('<h1>page</h1>');
  };

  /** Two GETs: both must render (nothing stored) and both say BYPASS. */
  async function expectNeverStored(
    app: Express,
    cache: ReturnType<typeof isr>,
    renders: () => number,
    expectedRenders = 3,
    between: () => void = () => {},
  ) {
    const first = await request(app).get('/page');
    expect(first.headers['x-isr-cache']).toBe('BYPASS');
    await cache.idle();
    between();
    const second = await request(app).get('/page');
    expect(second.headers['x-isr-cache']).toBe('BYPASS');
    // The first visitor: the shared render proved it uncacheable, then their own request
    // rendered it for them. The next visitor's request goes straight to the app (hit-for-pass).
    expect(renders()).toBe(expectedRenders);
    return { first, second };
  }

  describe('requests', () => {
    test.each(['POST', 'PUT', 'DELETE'] as const)(
      '%s is BYPASS and is never stored',
      async (method) => {
        const { app, cache, renders } = setup(html);
        const verb = method.toLowerCase() as 'post' | 'put' | 'delete';
        const first = await request(app)[verb]('/page');
        expect(first.status).toBe(200);
        expect(first.headers['x-isr-cache']).toBe('BYPASS');
        expect(first.text).toBe('<h1>page</h1>');
        await cache.idle();
        const second = await request(app)[verb]('/page');
        expect(second.headers['x-isr-cache']).toBe('BYPASS');
        expect(renders()).toBe(2);
        // Nothing was stored for the GET either.
        const get = await request(app).get('/page');
        expect(get.headers['x-isr-cache']).toBe('MISS');
        expect(renders()).toBe(3);
        expect(logged('/page', `method ${method}`)).not.toHaveLength(0);
      },
    );

    test('HEAD is answered from the GET entry, without a body', async () => {
      const { app, cache, renders } = setup(html);
      const get = await request(app).get('/page');
      expect(get.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();

      const head = await request(app).head('/page');
      expect(head.status).toBe(200);
      expect(head.headers['x-isr-cache']).toBe('HIT');
      expect(head.headers['content-type']).toMatch(/^text\/html/);
      expect(head.headers['content-length']).toBe(String(Buffer.byteLength('<h1>page</h1>')));
      expect(head.text ?? '').toBe('');
      expect(renders()).toBe(1);
    });

    test('a HEAD on a cold page stores the page a later GET gets in full', async () => {
      const { app, cache, renders } = setup(html);
      const head = await request(app).head('/page');
      expect(head.status).toBe(200);
      expect(head.headers['x-isr-cache']).toBe('MISS');
      expect(head.text ?? '').toBe('');
      await cache.idle();

      const get = await request(app).get('/page');
      expect(get.headers['x-isr-cache']).toBe('HIT');
      expect(get.text).toBe('<h1>page</h1>');
      expect(renders()).toBe(1);
    });

    test('a request with Authorization is BYPASS and its response is not stored', async () => {
      const { app, cache, renders } = setup((req, res) => {
        res.send(`<h1>${req.headers.authorization ? 'private to bob' : 'public'}</h1>`);
      });
      const authorized = await request(app).get('/page').set('Authorization', 'Bearer bob');
      expect(authorized.headers['x-isr-cache']).toBe('BYPASS');
      expect(authorized.text).toBe('<h1>private to bob</h1>');
      await cache.idle();

      const anonymous = await request(app).get('/page');
      expect(anonymous.headers['x-isr-cache']).toBe('MISS');
      expect(anonymous.text).toBe('<h1>public</h1>');
      await cache.idle();

      // A cached page is not served to an Authorization-bearing request either.
      const again = await request(app).get('/page').set('Authorization', 'Bearer bob');
      expect(again.headers['x-isr-cache']).toBe('BYPASS');
      expect(again.text).toBe('<h1>private to bob</h1>');
      expect(renders()).toBe(3);
      expect(logged('/page', 'authorization')).not.toHaveLength(0);
    });

    test('the bypass option makes a request BYPASS, rendered and not stored', async () => {
      const { app, cache, renders } = setup(html, {
        bypass: (req) => req.headers['x-preview'] === '1',
      });
      const preview = await request(app).get('/page').set('X-Preview', '1');
      expect(preview.headers['x-isr-cache']).toBe('BYPASS');
      await cache.idle();
      const visitor = await request(app).get('/page');
      expect(visitor.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      const cached = await request(app).get('/page');
      expect(cached.headers['x-isr-cache']).toBe('HIT');
      const previewAgain = await request(app).get('/page').set('X-Preview', '1');
      expect(previewAgain.headers['x-isr-cache']).toBe('BYPASS');
      expect(renders()).toBe(3);
      expect(logged('/page', 'bypass option')).not.toHaveLength(0);
    });
  });

  describe('responses never stored', () => {
    const cases: [string, Handler, string | RegExp, number?][] = [
      [
        'Set-Cookie',
        (_req, res) => {
          res.cookie('session', 'abc').send('<h1>page</h1>');
        },
        'set-cookie',
        // The render the cache made for the first visitor sets a cookie: it is theirs (a
        // session started, a one-time link used must not happen twice), not rendered again.
        2,
      ],
      [
        'Cache-Control: private',
        (_req, res) => {
          res.set('Cache-Control', 'private, max-age=60').send('<h1>page</h1>');
        },
        'private',
      ],
      [
        'Cache-Control: no-store',
        (_req, res) => {
          res.set('Cache-Control', 'no-store').send('<h1>page</h1>');
        },
        'no-store',
      ],
      [
        'Cache-Control: no-cache',
        (_req, res) => {
          res.set('Cache-Control', 'no-cache').send('<h1>page</h1>');
        },
        'no-cache',
      ],
      [
        'Vary: *',
        (_req, res) => {
          res.set('Vary', '*').send('<h1>page</h1>');
        },
        /vary \*/i,
      ],
      [
        'Vary: Cookie',
        (_req, res) => {
          res.set('Vary', 'Cookie').send('<h1>page</h1>');
        },
        /vary cookie/i,
      ],
      [
        'status 404',
        (_req, res) => {
          res.status(404).send('<h1>not found</h1>');
        },
        '404',
      ],
      [
        'status 301',
        (_req, res) => {
          res.redirect(301, '/elsewhere');
        },
        '301',
      ],
      [
        'application/json',
        (_req, res) => {
          res.json({ page: 1 });
        },
        'application/json',
      ],
      [
        'res.isr({ revalidate: 0 })',
        (_req, res) => {
          res.isr({ revalidate: 0 });
          res.send('<h1>page</h1>');
        },
        /revalidate 0/,
      ],
    ];

    test.each(cases)(
      '%s: BYPASS, rendered again next time, reason logged',
      async (_label, handler, reason, expectedRenders = 3) => {
        const { app, cache, clock, renders } = setup(handler);
        // Past the backoff of a failed render (the 500): README, a failing cold page.
        const { first, second } = await expectNeverStored(
          app,
          cache,
          renders,
          expectedRenders,
          () => clock.advance(1000),
        );
        expect(second.status).toBe(first.status);
        const lines = logged('/page', reason);
        expect(lines).not.toHaveLength(0);
        expect(lines.join('\n')).toMatch(/bypass|not stored/i);
      },
    );
  });

  test('status 500: the error page is passed on (MISS, not stored) and rendered again after its backoff', async () => {
    const { app, cache, clock, renders } = setup((_req, res) => {
      res.status(500).send('<h1>error</h1>');
    });
    const first = await request(app).get('/page');
    expect(first.status).toBe(500);
    expect(first.headers['x-isr-cache']).toBe('MISS');
    expect(first.headers['cache-status']).toBe('express-isr; fwd=uri-miss; fwd-status=500');
    await cache.idle();
    clock.advance(1000); // past the failed render's backoff (README, a failing cold page)
    const second = await request(app).get('/page');
    expect(second.status).toBe(500);
    expect(second.headers['cache-status']).not.toMatch(/stored/);
    expect(renders()).toBe(2);
    expect(logged('/page', '500')).not.toHaveLength(0);
  });

  describe('statuses and contentTypes options', () => {
    test('statuses: [200, 404] stores a 404 and replays it with status 404', async () => {
      const { app, cache, renders } = setup(
        (_req, res) => {
          res.status(404).send('<h1>no such post</h1>');
        },
        { statuses: [200, 404] },
      );
      const miss = await request(app).get('/page');
      expect(miss.status).toBe(404);
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      const hit = await request(app).get('/page');
      expect(hit.status).toBe(404);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<h1>no such post</h1>');
      expect(renders()).toBe(1);
    });

    test("contentTypes: ['*/*'] stores JSON", async () => {
      const { app, cache, renders } = setup(
        (_req, res) => {
          res.json({ page: 1 });
        },
        { contentTypes: ['*/*'] },
      );
      const miss = await request(app).get('/page');
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['content-type']).toMatch(/^application\/json/);
      expect(hit.body).toEqual({ page: 1 });
      expect(renders()).toBe(1);
    });

    test("contentTypes: ['text/*'] stores text/plain but not JSON", async () => {
      const clock = fakeClock();
      const cache = isr({ now: clock.now, contentTypes: ['text/*'] });
      cleanups.push(() => cache.close());
      const app: Express = createApp();
      let textRenders = 0;
      let jsonRenders = 0;
      app.use(cache);
      app.get('/text', (_req, res) => {
        textRenders += 1;
        res.type('text/plain').send('plain words');
      });
      app.get('/json', (_req, res) => {
        jsonRenders += 1;
        res.json({ page: 1 });
      });

      expect((await request(app).get('/text')).headers['x-isr-cache']).toBe('MISS');
      expect((await request(app).get('/json')).headers['x-isr-cache']).toBe('BYPASS');
      await cache.idle();
      const text = await request(app).get('/text');
      expect(text.headers['x-isr-cache']).toBe('HIT');
      expect(text.text).toBe('plain words');
      expect(text.headers['content-type']).toMatch(/^text\/plain/);
      expect((await request(app).get('/json')).headers['x-isr-cache']).toBe('BYPASS');
      expect(textRenders).toBe(1);
      expect(jsonRenders).toBe(3); // the shared render, then each visitor's own
      expect(logged('/json', 'application/json')).not.toHaveLength(0);
    });
  });
});

describe('URLs too deep or too long to cache', () => {
  // Each path segment is a tag clock per page in a shared store, and the key names the page in
  // the store and its index sets: a catch-all route must not let one request write thousands
  // of keys or kilobytes of names (README, "What is never cached").
  test.each([
    ['17 segments', `/${Array.from({ length: 17 }, () => 'a').join('/')}`, 'path too deep'],
    ['16 segments', `/${Array.from({ length: 16 }, () => 'a').join('/')}`, 'MISS'],
    ['a path over 1 KB', `/${'a'.repeat(1100)}`, 'path too long'],
    ['a long query string is fine', `/page?q=${'a'.repeat(1100)}`, 'MISS'],
    ['a URL over 2 KB', `/page?q=${'a'.repeat(2100)}`, 'URL too long'],
    [
      'tracking parameters are not in the key: they do not count',
      `/page?utm_source=${'a'.repeat(2100)}`,
      'MISS',
    ],
  ])('%s', async (_name, url, expected) => {
    const cache = isr();
    cleanups.push(() => cache.close());
    const app = expressVersions[0][1]();
    app.use(cache);
    app.use((_req, res) => {
      res.send('<p>catch-all</p>');
    });
    const answer = await request(app).get(url);
    expect(answer.headers['x-isr-cache']).toBe(expected === 'MISS' ? 'MISS' : 'BYPASS');
    if (expected !== 'MISS') expect(answer.headers['cache-status']).toContain(expected);
  });
});
