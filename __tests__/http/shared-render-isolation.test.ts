/**
 * Nothing one client sends shapes a shared page: the render that
 * will be stored — on a MISS as on a regeneration — sees no Cookie, no Authorization and none
 * of the client-controlled headers outside the key unless `forwardHeaders` lists them; `Host`
 * is the `host` option (or the server's own address), never the client's; and no request
 * header lets a client skip the cache or force a render.
 */
import type { Express } from 'express';
import request from 'supertest';
import { type IsrOptions, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

/** What a render saw, as the echo route prints it into the page. */
interface Seen {
  render: number;
  headers: Record<string, string>;
  hostname: string;
  protocol: string;
  ip: string;
  ips: string[];
  method: string;
  url: string;
  user: string;
}

/**
 * Everything a client could send to try to shape the stored page (Authorization and Cookie
 * aside: those requests get their own render, see the tests below).
 */
const HOSTILE: Record<string, string> = {
  'X-Forwarded-Host': 'evil.example',
  'X-Forwarded-Proto': 'https',
  'X-Forwarded-For': '6.6.6.6',
  Forwarded: 'for=6.6.6.6;host=evil.example;proto=https',
  'X-Original-URL': '/admin',
  'X-Rewrite-URL': '/admin',
  'X-HTTP-Method-Override': 'DELETE',
  'X-User-Id': '42',
};

const HOSTILE_NAMES = Object.keys(HOSTILE).map((name) => name.toLowerCase());

function seenIn(html: string): Seen {
  const match = /<pre id="seen">(.*)<\/pre>/s.exec(html);
  if (match === null) throw new Error(`no echo in page: ${html}`);
  return JSON.parse(match[1]) as Seen;
}

function expectNothingHostile(seen: Seen, html: string): void {
  for (const name of HOSTILE_NAMES) expect(seen.headers[name]).toBeUndefined();
  expect(seen.user).toBe('anonymous');
  expect(seen.hostname).not.toBe('evil.example');
  expect(seen.protocol).toBe('http');
  expect(seen.ip).not.toBe('6.6.6.6');
  expect(seen.ips).toEqual([]);
  expect(seen.method).toBe('GET');
  expect(seen.url).toBe('/echo');
  expect(html).not.toContain('evil.example');
  expect(html).not.toContain('alice');
  expect(html).not.toContain('ADMIN');
}

describe.each(expressVersions)(
  'the shared render is isolated from the client (%s)',
  (_name, createApp) => {
    /**
     * An app behind a (trusted) proxy, with the kind of middleware that turns client headers
     * into state: a session from Cookie or Authorization, a method override, a URL rewrite.
     * They run after the cache, as they would in a real app mounted below `app.use(isr())`.
     */
    function setup(options: IsrOptions = {}) {
      const clock = fakeClock();
      const cache = isr({ now: clock.now, ...options });
      cleanups.push(() => cache.close());
      const app: Express = createApp();
      app.set('trust proxy', true);
      let renders = 0;
      app.use(cache);
      app.use((req, _res, next) => {
        const override = req.headers['x-http-method-override'];
        if (typeof override === 'string') req.method = override;
        const rewrite = req.headers['x-original-url'] ?? req.headers['x-rewrite-url'];
        if (typeof rewrite === 'string') req.url = rewrite;
        const auth = req.headers.authorization;
        const cookie = /session=(\w+)/.exec(req.headers.cookie ?? '');
        (req as unknown as { user: string }).user =
          auth !== undefined ? auth.replace(/^Bearer /, '') : (cookie?.[1] ?? 'anonymous');
        next();
      });
      app.get('/admin', (_req, res) => {
        res.send('<h1>ADMIN</h1>');
      });
      app.get('/echo', (req, res) => {
        renders += 1;
        const seen: Seen = {
          render: renders,
          headers: req.headers as Record<string, string>,
          hostname: req.hostname,
          protocol: req.protocol,
          ip: req.ip ?? '',
          ips: req.ips,
          method: req.method,
          url: req.originalUrl,
          user: (req as unknown as { user: string }).user,
        };
        res.send(`<!doctype html><pre id="seen">${JSON.stringify(seen)}</pre>`);
      });
      app.get('/where', (req, res) => {
        renders += 1;
        res.send(`<p>You are on ${req.get('x-forwarded-host') ?? req.hostname}</p>`);
      });
      return { app, cache, clock, renders: () => renders };
    }

    test('a MISS render sees none of the hostile headers, and the stored page is clean', async () => {
      const { app, cache } = setup();
      const miss = await request(app).get('/echo').set(HOSTILE);
      expect(miss.status).toBe(200);
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      expectNothingHostile(seenIn(miss.text), miss.text);
      await cache.idle();

      const hit = await request(app).get('/echo');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe(miss.text);
    });

    test('a regeneration sees none of the hostile headers sent with the STALE request', async () => {
      const { app, cache, clock, renders } = setup();
      const miss = await request(app).get('/echo').set(HOSTILE).set('Host', 'evil.example');
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();

      clock.advanceSeconds(61);
      const stale = await request(app).get('/echo').set(HOSTILE).set('Host', 'evil.example');
      expect(stale.headers['x-isr-cache']).toBe('STALE');
      await cache.idle();
      expect(renders()).toBe(2);

      const hit = await request(app).get('/echo');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      const seen = seenIn(hit.text);
      expect(seen.render).toBe(2);
      expectNothingHostile(seen, hit.text);
      expect(seen.headers.host).not.toBe('evil.example');
    });

    test('the render sees Accept and Accept-Language by default', async () => {
      const { app } = setup();
      const miss = await request(app)
        .get('/echo')
        .set('Accept', 'text/html')
        .set('Accept-Language', 'fr-CH');
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      const seen = seenIn(miss.text);
      expect(seen.headers.accept).toBe('text/html');
      expect(seen.headers['accept-language']).toBe('fr-CH');
    });

    test('a Cookie session gets its own render and never reaches the shared one; an Authorization request is BYPASS and never stored', async () => {
      const { app, cache, renders } = setup();
      const withCookie = await request(app).get('/echo').set('Cookie', 'session=alice');
      expect(withCookie.headers['x-isr-cache']).toBe('BYPASS');
      expect(seenIn(withCookie.text).user).toBe('alice');
      await cache.idle(); // the page is rendered apart, without the cookie, for everyone else

      const withAuth = await request(app).get('/echo').set('Authorization', 'Bearer bob');
      expect(withAuth.headers['x-isr-cache']).toBe('BYPASS');
      expect(seenIn(withAuth.text).user).toBe('bob');
      expect(renders()).toBe(3);
      await cache.idle();

      const anonymous = await request(app).get('/echo');
      expect(anonymous.headers['x-isr-cache']).toBe('HIT');
      expect(seenIn(anonymous.text).user).toBe('anonymous');
      expectNothingHostile(seenIn(anonymous.text), anonymous.text);
      expect(anonymous.text).not.toContain('bob');

      // The echo read every header (cookies included): it is never replayed to a cookie.
      const again = await request(app).get('/echo').set('Cookie', 'session=alice');
      expect(again.headers['x-isr-cache']).toBe('BYPASS');
      expect(seenIn(again.text).user).toBe('alice');
    });

    test.each([
      ['x-user-id', '42', {}],
      ['x-forwarded-proto', 'https', {}],
      // Only a cookie `sessionCookies` does not name can reach a shared render at all.
      ['cookie', 'session=alice', { sessionCookies: ['sid'] as string[] }],
    ] as const)(
      'a header listed in forwardHeaders (%s) reaches the render',
      async (listed, value, extra) => {
        const { app } = setup({
          forwardHeaders: ['accept', 'accept-language', listed],
          ...extra,
        });
        const sent = listed === 'cookie' ? { ...HOSTILE, Cookie: value } : HOSTILE;
        const miss = await request(app).get('/echo').set(sent);
        const seen = seenIn(miss.text);
        expect(seen.headers[listed]).toBe(value);
        // Only that one: the others are still withheld.
        for (const name of HOSTILE_NAMES.filter((n) => n !== listed)) {
          expect(seen.headers[name]).toBeUndefined();
        }
      },
    );

    test('the render sees the `host` option as Host, never the client Host', async () => {
      const { app } = setup({ host: 'www.example.com' });
      const miss = await request(app).get('/echo').set('Host', 'evil.example');
      const seen = seenIn(miss.text);
      expect(seen.headers.host).toBe('www.example.com');
      expect(seen.hostname).toBe('www.example.com');
      expect(miss.text).not.toContain('evil.example');
    });

    test('without the `host` option the render sees the server address, not the client Host', async () => {
      const { app } = setup();
      const miss = await request(app).get('/echo').set('Host', 'evil.example');
      const seen = seenIn(miss.text);
      expect(seen.headers.host).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(miss.text).not.toContain('evil.example');
    });

    test("with 'host' in forwardHeaders the client Host is passed to the render", async () => {
      const { app } = setup({
        host: 'www.example.com',
        forwardHeaders: ['accept', 'accept-language', 'host'],
      });
      const miss = await request(app).get('/echo').set('Host', 'tenant.example');
      const seen = seenIn(miss.text);
      expect(seen.headers.host).toBe('tenant.example');
      expect(seen.hostname).toBe('tenant.example');
    });

    test('cache poisoning through X-Forwarded-Host fails', async () => {
      const { app, cache } = setup();
      const poisoned = await request(app).get('/where').set('X-Forwarded-Host', 'evil.example');
      expect(poisoned.status).toBe(200);
      expect(poisoned.headers['x-isr-cache']).toBe('MISS');
      expect(poisoned.text).not.toContain('evil.example');
      await cache.idle();

      const clean = await request(app).get('/where');
      expect(clean.status).toBe(200);
      expect(clean.headers['x-isr-cache']).toBe('HIT');
      expect(clean.text).toMatch(/^<p>You are on .+<\/p>$/);
      expect(clean.text).not.toContain('evil.example');
    });

    test.each([
      ['Cache-Control', 'no-cache'],
      ['Pragma', 'no-cache'],
      ['Cache-Control', 'max-age=0'],
      ['Cache-Control', 'no-store'],
    ])('%s: %s does not skip the cache nor force a render on a fresh page', async (name, value) => {
      const { app, cache, renders } = setup();
      const miss = await request(app).get('/echo');
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();

      const again = await request(app).get('/echo').set(name, value);
      expect(again.status).toBe(200);
      expect(again.headers['x-isr-cache']).toBe('HIT');
      expect(again.text).toBe(miss.text);
      await cache.idle();
      expect(renders()).toBe(1);
    });
  },
);
