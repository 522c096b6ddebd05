/**
 * Cache poisoning and deception (RFC 9111 §3 and §4): a client cannot make
 * its own variant the page the cache serves to everyone else. Each attack is sent first, on a
 * cold page, to an app whose routes echo the request into the page — Host, the forwarded
 * headers, URL-rewrite and method-override headers (honoured by middleware mounted after the
 * cache, as apps do), ignored query parameters, odd spellings of the path, an oversized
 * header. A clean visitor's request must then get exactly the clean page. Also: a page that
 * reads a session (Cookie or Authorization, through the app's own middleware) is never shared,
 * and no request header lets a client skip the cache or force a render.
 *
 * The clean reference page is rendered by the same app through its own `bypass` opt-in
 * (`x-test-reference: 1`, which the app chose to honour, as the README suggests for previews),
 * on the same port, so it is byte for byte what an honest first visitor would have cached.
 */
import type { Express, NextFunction, Request, Response } from 'express';
import { type IsrOptions, isr } from '../../lib';
import { expressVersions } from '../helpers/express';
import { type Answer, listen } from '../helpers/http';
import { fakeClock } from '../helpers/time';

const REFERENCE = { 'x-test-reference': '1' };

/** What this file did, printed once at the end (SECURITY.md quotes it). */
const figures = { requests: 0, cleanChecks: 0 };
afterAll(() => {
  console.log(
    `[cache-poisoning] ${figures.requests} requests (attacks, clean visitors, references); ` +
      `${figures.cleanChecks} clean visitors' pages compared byte for byte with the reference`,
  );
});

/** Everything a render could be shaped by, printed into the page. */
function echo(req: Request): string {
  const seen = {
    method: req.method,
    url: req.originalUrl,
    path: req.path,
    slug: req.params.slug,
    query: req.query,
    host: req.get('host'),
    hostname: req.hostname,
    protocol: req.protocol,
    forwardedHost: req.get('x-forwarded-host'),
    forwardedProto: req.get('x-forwarded-proto'),
    originalUrl: req.get('x-original-url'),
    rewriteUrl: req.get('x-rewrite-url'),
    methodOverride: req.get('x-http-method-override'),
    big: req.get('x-big')?.length,
    user: (req as Request & { user?: string }).user ?? 'guest',
  };
  return `<!doctype html><link rel="canonical" href="${req.protocol}://${req.get('host')}${req.originalUrl}"><pre>${JSON.stringify(seen)}</pre>`;
}

describe.each(expressVersions)('cache poisoning and deception (%s)', (_name, createApp) => {
  async function setup(options: IsrOptions = {}) {
    const clock = fakeClock();
    const cache = isr({
      now: clock.now,
      bypass: (req) => req.headers['x-test-reference'] === '1',
      ...options,
    });
    const app: Express = createApp();
    app.set('trust proxy', true); // the app believes X-Forwarded-*: the worst case for poisoning
    const renders: Record<string, number> = {};
    const count = (name: string) => {
      renders[name] = (renders[name] ?? 0) + 1;
    };
    app.use(cache);
    // What apps mount below the cache: method-override (for every method, the lax setting),
    // an IIS/Symfony-style URL rewrite, and a cookie-parser-like session reader.
    app.use((req: Request, _res: Response, next: NextFunction) => {
      const override = req.headers['x-http-method-override'];
      if (typeof override === 'string') req.method = override.toUpperCase();
      const rewrite = req.headers['x-original-url'] ?? req.headers['x-rewrite-url'];
      if (typeof rewrite === 'string') req.url = rewrite;
      const cookies = Object.fromEntries(
        (req.headers.cookie ?? '')
          .split(';')
          .map((pair) => pair.trim().split('='))
          .filter((pair) => pair.length === 2),
      ) as Record<string, string>;
      const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
      const user = bearer ?? cookies.session;
      if (user !== undefined) (req as Request & { user?: string }).user = user;
      next();
    });
    app.get('/blog/:slug', (req, res) => {
      count('blog');
      res.send(echo(req));
    });
    app.delete('/blog/:slug', (req, res) => {
      count('delete');
      res.send(`<p>DELETED ${req.params.slug}</p>`);
    });
    app.get('/admin', (_req, res) => {
      count('admin');
      res.send('<h1>ADMIN PANEL</h1>');
    });
    app.get('/account', (req, res) => {
      count('account');
      const user = (req as Request & { user?: string }).user;
      res.send(user === undefined ? '<p>Hello, guest</p>' : `<p>Hello, ${user}</p>`);
    });
    const server = await listen(app);
    const send: typeof server.send = (request) => {
      figures.requests += 1;
      return server.send(request);
    };
    const site = {
      send,
      get: (path: string, headers?: Record<string, string>) => send({ path, headers }),
    };
    cleanups.push(async () => {
      await cache.close();
      await server.close();
    });
    return { site, cache, clock, renders: (name: string) => renders[name] ?? 0 };
  }

  /** Closed after each test, even a failed one: no server or cache outlives its test. */
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0)) await cleanup();
  });

  function expectClean(victim: Answer, reference: Answer, markers: string[]) {
    figures.cleanChecks += 1;
    expect(victim.error).toBeUndefined();
    expect(victim.status).toBe(200);
    for (const marker of markers) expect(victim.body).not.toContain(marker);
    expect(victim.body).toBe(reference.body);
  }

  describe('through request headers the key does not include', () => {
    const attacks: [string, Record<string, string>, string[]][] = [
      ['Host', { host: 'evil.example' }, ['evil.example']],
      ['X-Forwarded-Host', { 'x-forwarded-host': 'evil.example' }, ['evil.example']],
      ['X-Forwarded-Proto', { 'x-forwarded-proto': 'evilproto' }, ['evilproto']],
      ['X-Original-URL', { 'x-original-url': '/admin' }, ['ADMIN', '/admin']],
      ['X-Rewrite-URL', { 'x-rewrite-url': '/admin' }, ['ADMIN', '/admin']],
      ['X-HTTP-Method-Override', { 'x-http-method-override': 'DELETE' }, ['DELETE']],
      [
        'all of them at once, and a Forwarded header',
        {
          host: 'evil.example',
          'x-forwarded-host': 'evil.example',
          'x-forwarded-proto': 'evilproto',
          forwarded: 'for=6.6.6.6;host=evil.example;proto=evilproto',
          'x-original-url': '/admin',
          'x-http-method-override': 'DELETE',
        },
        ['evil.example', 'evilproto', 'ADMIN', 'DELETE'],
      ],
      // Under Node's 16 KB header limit, so the request reaches the cache.
      ['a 15 KB X-Big header', { 'x-big': 'B'.repeat(15 * 1024) }, ['"big":15360']],
    ];

    test.each(attacks)(
      '%s: the attacker on a cold page does not shape the page a clean visitor gets',
      async (_label, headers, markers) => {
        const { site, cache, renders } = await setup();
        const reference = await site.send({ path: '/blog/a', headers: REFERENCE });
        expect(reference.headers['x-isr-cache']).toBe('BYPASS');

        const attack = await site.send({ path: '/blog/a', headers });
        expect(attack.status).toBe(200);
        expect(attack.headers['x-isr-cache']).toBe('MISS');
        await cache.idle();

        const victim = await site.get('/blog/a');
        expect(victim.headers['x-isr-cache']).toBe('HIT');
        expectClean(victim, reference, markers);
        // The attacker's own copy was the clean page too: the shared render never saw it.
        expect(attack.body).toBe(reference.body);
        expect(renders('admin')).toBe(0);
        expect(renders('delete')).toBe(0);
      },
    );

    test('the same attacks on a stale page: the regeneration they trigger is clean too', async () => {
      const { site, cache, clock, renders } = await setup();
      const reference = await site.send({ path: '/blog/a', headers: REFERENCE });
      await site.get('/blog/a');
      await cache.idle();
      clock.advanceSeconds(61);
      const hostile = {
        host: 'evil.example',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-proto': 'evilproto',
        'x-original-url': '/admin',
        'x-http-method-override': 'DELETE',
        // (no cookie: a request with cookies gets its own render, see the session tests below)
      };
      const stale = await site.send({ path: '/blog/a?utm_source=evil-utm', headers: hostile });
      expect(stale.headers['x-isr-cache']).toBe('STALE');
      await cache.idle();
      expect(renders('blog')).toBe(3); // reference, first render, regeneration

      const victim = await site.get('/blog/a');
      expect(victim.headers['x-isr-cache']).toBe('HIT');
      expectClean(victim, reference, ['evil', 'ADMIN', 'DELETE', 'mallory']);
    });

    test('a header over Node’s 16 KB limit is refused with a 4xx, nothing is stored, the page stays clean', async () => {
      const { site, cache, renders } = await setup();
      const reference = await site.send({ path: '/blog/a', headers: REFERENCE });
      const huge = await site.send({
        path: '/blog/a',
        headers: { 'x-forwarded-host': `evil.${'x'.repeat(16 * 1024)}.example` },
      });
      // Node answers 431 itself and closes; a client may see that answer or only the close.
      if (huge.error === undefined) {
        expect(huge.status).toBeGreaterThanOrEqual(400);
        expect(huge.status).toBeLessThan(500);
      }
      expect(renders('blog')).toBe(1); // the reference only: the app never saw it
      await cache.idle();

      const victim = await site.get('/blog/a');
      expect(victim.headers['x-isr-cache']).toBe('MISS');
      expectClean(victim, reference, ['evil.']);
    });
  });

  test('tracking parameters the key ignores never reach the stored page', async () => {
    const { site, cache } = await setup();
    const reference = await site.send({ path: '/blog/a', headers: REFERENCE });
    const attack = await site.get(
      '/blog/a?utm_source=%3Cscript%3Eevil-utm%3C%2Fscript%3E&fbclid=evil-fb&gclid=evil-g&msclkid=evil-ms&utm_x[__proto__][y]=evil-proto',
    );
    expect(attack.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    const victim = await site.get('/blog/a');
    expect(victim.headers['x-isr-cache']).toBe('HIT');
    expectClean(victim, reference, ['evil', 'script', 'utm_', 'fbclid']);
    // And a victim arriving with other tracking values gets the same clean page.
    const tracked = await site.get('/blog/a?utm_campaign=spring');
    expect(tracked.headers['x-isr-cache']).toBe('HIT');
    expectClean(tracked, reference, ['evil', 'spring']);
  });

  describe('through spellings of the path', () => {
    const spellings = [
      '/blog/a/..%2f',
      '/blog/a/..%2F..%2Fadmin',
      '//blog/a',
      '/blog//a',
      '/blog/a;jsessionid=evil',
      '/blog/%61',
      '/blog/%41',
      '/blog/A',
      '/blog/a/',
      '/blog/a%2f',
      '/blog/a%00',
      '/blog/a?',
      '/blog/a#evil',
    ];

    test.each(spellings)(
      '%s first, then /blog/a: the clean visitor gets the clean page',
      async (spelling) => {
        const { site, cache } = await setup();
        const reference = await site.send({ path: '/blog/a', headers: REFERENCE });
        const attack = await site.get(spelling);
        expect(attack.error).toBeUndefined();
        expect(attack.status).toBeLessThan(500);
        await cache.idle();

        const victim = await site.get('/blog/a');
        expect(['MISS', 'HIT']).toContain(victim.headers['x-isr-cache']);
        expectClean(victim, reference, ['evil', 'jsessionid', '..', '%2', '/blog/A']);
        // Served again from the cache, it is still the clean page.
        await cache.idle();
        const again = await site.get('/blog/a');
        expect(again.headers['x-isr-cache']).toBe('HIT');
        expectClean(again, reference, []);
      },
    );

    test('a page stored under an odd spelling answers for that spelling only, rendered for its canonical URL', async () => {
      const { site, cache, renders } = await setup();
      // /blog/%61 is /blog/a (RFC 3986 §6.2.2): one entry, rendered for the canonical URL.
      const encoded = await site.get('/blog/%61');
      expect(encoded.headers['x-isr-cache']).toBe('MISS');
      expect(encoded.body).toContain('"url":"/blog/a"');
      await cache.idle();
      const plain = await site.get('/blog/a');
      expect(plain.headers['x-isr-cache']).toBe('HIT');
      expect(plain.body).toBe(encoded.body);
      // /blog/a;jsessionid=… is another resource: its page never answers /blog/a.
      const session = await site.get('/blog/a;jsessionid=evil');
      expect(session.headers['x-isr-cache']).toBe('MISS');
      expect(renders('blog')).toBe(2);
    });
  });

  describe('a page that reads the session through the app’s own middleware', () => {
    test('a Cookie session on a cold page: its owner gets their own page, the stored page is the anonymous one', async () => {
      const { site, cache, renders } = await setup();
      const owner = await site.get('/account', { cookie: 'session=mallory; theme=dark' });
      expect(owner.status).toBe(200);
      expect(owner.headers['x-isr-cache']).toBe('BYPASS');
      expect(owner.body).toBe('<p>Hello, mallory</p>');
      await cache.idle(); // the page for everyone else is rendered apart, without the cookie

      const victim = await site.get('/account');
      expect(victim.headers['x-isr-cache']).toBe('HIT');
      expect(victim.body).toBe('<p>Hello, guest</p>');
      expect(renders('account')).toBe(2);
      // The page read the session: it is never replayed to a request that carries cookies.
      const ownerAgain = await site.get('/account', { cookie: 'session=mallory' });
      expect(ownerAgain.headers['x-isr-cache']).toBe('BYPASS');
      expect(ownerAgain.body).toBe('<p>Hello, mallory</p>');
    });

    test('an Authorization session is rendered for its owner, never stored, never shown to anyone else', async () => {
      const { site, cache, renders } = await setup();
      const owner = await site.get('/account', { authorization: 'Bearer mallory' });
      expect(owner.headers['x-isr-cache']).toBe('BYPASS');
      expect(owner.body).toBe('<p>Hello, mallory</p>');
      await cache.idle();

      const victim = await site.get('/account');
      expect(victim.headers['x-isr-cache']).toBe('MISS');
      expect(victim.body).toBe('<p>Hello, guest</p>');
      await cache.idle();
      const again = await site.get('/account');
      expect(again.headers['x-isr-cache']).toBe('HIT');
      expect(again.body).toBe('<p>Hello, guest</p>');
      // The owner still gets their own page, rendered for them, not the shared one.
      const ownerAgain = await site.get('/account', { authorization: 'Bearer mallory' });
      expect(ownerAgain.body).toBe('<p>Hello, mallory</p>');
      expect(renders('account')).toBe(3);
    });

    test('sessions racing for one cold page: every anonymous visitor gets the anonymous page', async () => {
      const { site, cache } = await setup();
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, i) =>
          i % 3 === 0
            ? site.get('/account', { cookie: `session=user${i}` })
            : i % 3 === 1
              ? site.get('/account', { authorization: `Bearer user${i}` })
              : site.get('/account'),
        ),
      );
      answers.forEach((answer, i) => {
        expect(answer.status).toBe(200);
        // A request with a session (a cookie or Authorization) gets its own render; every
        // other request the anonymous page: nobody sees another visitor's.
        const expected = i % 3 === 2 ? '<p>Hello, guest</p>' : `<p>Hello, user${i}</p>`;
        expect({ i, body: answer.body }).toEqual({ i, body: expected });
      });
      await cache.idle();
      expect((await site.get('/account')).body).toBe('<p>Hello, guest</p>');
    });
  });

  describe('no request header skips the cache or forces a render', () => {
    const headers: [string, string][] = [
      ['Cache-Control', 'no-cache'],
      ['Cache-Control', 'no-store'],
      ['Cache-Control', 'max-age=0'],
      ['Cache-Control', 'no-cache, no-store, must-revalidate, max-age=0'],
      ['Pragma', 'no-cache'],
      ['X-ISR-Regenerate', '1'],
      ['X-ISR-Cache', 'MISS'],
      ['X-Prerender-Revalidate', '1'],
      ['Surrogate-Control', 'no-store'],
      ['Cache-Status', 'express-isr; fwd=miss; stored'],
      ['If-None-Match', '*'],
    ];

    test.each(headers)(
      '%s: %s — HIT, the route does not run, now or in the background',
      async (name, value) => {
        const { site, cache, renders } = await setup();
        const first = await site.get('/blog/a');
        expect(first.headers['x-isr-cache']).toBe('MISS');
        await cache.idle();

        for (const method of ['GET', 'HEAD']) {
          const forced = await site.send({ method, path: '/blog/a', headers: { [name]: value } });
          expect(forced.status).toBeLessThan(400);
          expect(forced.headers['x-isr-cache']).toBe('HIT');
        }
        const get = await site.send({ path: '/blog/a', headers: { [name]: value } });
        if (get.status === 200) expect(get.body).toBe(first.body);
        await cache.idle();
        expect(renders('blog')).toBe(1);
      },
    );

    test('all of them at once, on a page that is fresh for a long time: still one render', async () => {
      const { site, cache, clock, renders } = await setup();
      await site.get('/blog/a');
      await cache.idle();
      const all = Object.fromEntries(headers.filter(([name]) => name !== 'If-None-Match'));
      for (let i = 0; i < 20; i += 1) {
        clock.advanceSeconds(2); // within the 60 s window throughout
        const forced = await site.send({ path: '/blog/a', headers: all });
        expect(forced.headers['x-isr-cache']).toBe('HIT');
      }
      await cache.idle();
      expect(renders('blog')).toBe(1);
    });
  });
});
