/**
 * Sessions and logged-in users (README, "Sessions and logged-in users"), with the real
 * express-session and cookie-parser mounted after a global `isr()` with default options: a
 * visitor with a session gets pages and JSON rendered with their cookie, never a Set-Cookie of
 * someone else's render, and stays logged in; a page whose render read cookies is never
 * replayed to a request that carries one; anonymous visitors (and, with `sessionCookies`,
 * visitors with only analytics cookies) still get HITs.
 */

import cookieParser from 'cookie-parser';
import type { Express, Request, Response } from 'express';
import session from 'express-session';
import request from 'supertest';
import { type IsrOptions, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { recordDebugLines } from '../helpers/debug-lines';
import { expressVersions } from '../helpers/express';
import { freshLib } from '../helpers/fresh-lib';
import { listen } from '../helpers/http';
import { readmeExample } from '../helpers/readme-example';

declare module 'express-session' {
  interface SessionData {
    user?: string;
  }
}

const cleanups = cleanupsAfterEach();

/** The `connect.sid` value a response sets, if any. */
function sidSet(res: request.Response): string | undefined {
  const cookies = ([] as string[]).concat(res.headers['set-cookie'] ?? []);
  return cookies.find((c) => c.startsWith('connect.sid='))?.split(';')[0];
}

describe.each(expressVersions)('sessions (%s)', (_name, createApp) => {
  function site(
    options: IsrOptions = {},
    middleware: { saveUninitialized?: boolean; cookieParser?: boolean } = {},
  ) {
    const recorder = errorRecorder();
    const cache = isr({ logger: recorder.logger, ...options });
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    const renders: Record<string, number> = {};
    const count = (name: string) => {
      renders[name] = (renders[name] ?? 0) + 1;
    };
    app.use(cache); // first, as the README says
    if (middleware.cookieParser) app.use(cookieParser());
    app.use(
      session({
        secret: 'a secret long enough for a test',
        resave: false,
        saveUninitialized: middleware.saveUninitialized ?? false,
      }),
    );
    app.post('/login', (req: Request, res: Response) => {
      req.session.user = String(req.query.user);
      res.redirect(303, '/account');
    });
    app.get('/account', (req: Request, res: Response) => {
      count('account');
      res.send(`<p>Hello, ${req.session.user ?? 'guest'}</p>`);
    });
    app.get('/api/me', (req: Request, res: Response) => {
      res.json({ user: req.session.user ?? null });
    });
    app.get('/about', (_req: Request, res: Response) => {
      count('about');
      res.send('<p>About us</p>');
    });
    return { app, cache, recorder, renders: (name: string) => renders[name] ?? 0 };
  }

  test('a signed-in user gets their own pages and JSON and stays signed in across any number of GETs (saveUninitialized: true)', async () => {
    const { app, cache } = site({}, { saveUninitialized: true });
    // An anonymous visitor first: the shared copy of /account is the guest page.
    await request(app).get('/account');
    await cache.idle();

    const alice = request.agent(app);
    const login = await alice.post('/login?user=alice');
    expect(login.status).toBe(303);
    const sid = sidSet(login);
    expect(sid).toBeDefined();

    for (let i = 0; i < 5; i += 1) {
      for (const path of ['/account', '/about', '/api/me']) {
        const res = await alice.get(path);
        expect(res.status).toBe(200);
        // Never another session's cookie: at most her own, re-sent.
        const set = sidSet(res);
        if (set !== undefined) expect(set).toBe(sid);
        if (path === '/account') expect(res.text).toBe('<p>Hello, alice</p>');
        if (path === '/api/me') expect(res.body).toEqual({ user: 'alice' });
      }
    }
    expect((await alice.get('/api/me')).body).toEqual({ user: 'alice' });
  });

  test('anonymous visitors still get HITs with express-session (saveUninitialized: false) and cookie-parser mounted after isr()', async () => {
    const { app, cache, renders } = site({}, { cookieParser: true });
    expect((await request(app).get('/account')).headers['x-isr-cache']).toBe('MISS');
    expect((await request(app).get('/about')).headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    for (const path of ['/account', '/about']) {
      const hit = await request(app).get(path);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['set-cookie']).toBeUndefined();
    }
    expect((await request(app).get('/account')).text).toBe('<p>Hello, guest</p>');
    expect(renders('account')).toBe(1);

    // Bob signs in: every page read cookies (the session middleware does), so his requests
    // get their own renders, and the anonymous page stays as it was.
    const bob = request.agent(app);
    await bob.post('/login?user=bob');
    const his = await bob.get('/account');
    expect(his.headers['x-isr-cache']).toBe('BYPASS');
    expect(his.text).toBe('<p>Hello, bob</p>');
    expect((await request(app).get('/account')).text).toBe('<p>Hello, guest</p>');
  });

  test('a stored page that read cookies is never replayed to a request carrying one, nor stored from one', async () => {
    const { app, cache, renders } = site();
    const bob = request.agent(app);
    await bob.post('/login?user=bob');
    // Cold page, first visitor signed in: he gets his page; the shared copy is rendered apart.
    const first = await bob.get('/account');
    expect(first.headers['x-isr-cache']).toBe('BYPASS');
    expect(first.text).toBe('<p>Hello, bob</p>');
    await cache.idle();
    expect(renders('account')).toBe(2);
    const anonymous = await request(app).get('/account');
    expect(anonymous.headers['x-isr-cache']).toBe('HIT');
    expect(anonymous.text).toBe('<p>Hello, guest</p>');
    // Any cookie at all, when no `sessionCookies` say which are personal: its own render.
    const tracked = await request(app).get('/account').set('Cookie', '_ga=GA1.2.3');
    expect(tracked.headers['x-isr-cache']).toBe('BYPASS');
    expect(tracked.headers['cache-status']).toMatch(/fwd=bypass; detail="cookie/);
  });

  test('a herd of signed-in and anonymous visitors on a cold page: each sees only their own page', async () => {
    const { app, cache } = site();
    const agents = await Promise.all(
      ['ann', 'ben', 'cat'].map(async (user) => {
        const agent = request.agent(app);
        await agent.post(`/login?user=${user}`);
        return { user, agent };
      }),
    );
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => {
        const who = agents[i % 4];
        return who === undefined
          ? request(app)
              .get('/account')
              .then((res) => ({ user: 'guest', res }))
          : who.agent.get('/account').then((res) => ({ user: who.user, res }));
      }),
    );
    for (const { user, res } of answers) {
      expect(res.text).toBe(`<p>Hello, ${user}</p>`);
      expect(sidSet(res)).toBeUndefined();
    }
    await cache.idle();
    expect((await request(app).get('/account')).text).toBe('<p>Hello, guest</p>');
  });

  test('visitors with only analytics cookies get HITs on pages that do not read cookies', async () => {
    const cache = isr();
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/about', (_req, res) => {
      renders += 1;
      res.send('<p>About us</p>');
    });
    const analytics = { Cookie: '_ga=GA1.2.3; consent=all' };
    // The very first visitor carries cookies: their own render, and one apart for everyone.
    expect((await request(app).get('/about').set(analytics)).headers['x-isr-cache']).toBe('BYPASS');
    await cache.idle();
    expect(renders).toBe(2);
    for (let i = 0; i < 3; i += 1) {
      const hit = await request(app).get('/about').set(analytics);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe('<p>About us</p>');
    }
    expect(renders).toBe(2);
  });

  test('with sessionCookies: ["connect.sid"], visitors with other cookies get HITs; a session gets its own render', async () => {
    const { app, cache, recorder } = site(
      { sessionCookies: ['connect.sid'] },
      { cookieParser: true },
    );
    await request(app).get('/account');
    await cache.idle();
    const tracked = await request(app).get('/account').set('Cookie', '_ga=GA1.2.3; theme=dark');
    expect(tracked.headers['x-isr-cache']).toBe('HIT');
    expect(tracked.text).toBe('<p>Hello, guest</p>');

    const carol = request.agent(app);
    await carol.post('/login?user=carol');
    const hers = await carol.get('/account');
    expect(hers.headers['x-isr-cache']).toBe('BYPASS');
    expect(hers.headers['cache-status']).toMatch(/detail="session cookie connect.sid"/);
    expect(hers.text).toBe('<p>Hello, carol</p>');
    expect((await carol.get('/about')).headers['x-isr-cache']).toBe('BYPASS');
    expect(recorder.warnings.flat().join('\n')).not.toMatch(/ISR_COOKIES_READ/);
  });

  test('sessionCookies must be cookie names', () => {
    expect(() => isr({ sessionCookies: 'connect.sid' as never })).toThrow(
      /\[express-isr\] sessionCookies must be an array of non-empty strings/,
    );
    expect(() => isr({ sessionCookies: ['a b'] })).toThrow(/sessionCookies must be cookie names/);
  });

  describe('DEBUG=express-isr', () => {
    const lines = recordDebugLines();
    test('says when cookies are why a request was not served from the cache', async () => {
      const { app, cache } = site();
      await request(app).get('/account');
      await cache.idle();
      await request(app).get('/account').set('Cookie', 'connect.sid=whatever');
      expect(lines.join('\n')).toMatch(/read the Cookie header/);
      expect(lines.join('\n')).toMatch(/bypass: GET \/account \(cookie; the page reads cookies\)/);
    });
  });
});

test('ISR_COOKIES_READ: printed once when a render reads cookies and sessionCookies is not set', async () => {
  const express = (await import('express')).default;
  const recorder = errorRecorder();
  const cache = freshLib().isr({ logger: recorder.logger });
  cleanups.push(() => cache.close());
  const app = express();
  app.use(cache);
  app.use(
    session({ secret: 'a secret long enough for a test', resave: false, saveUninitialized: false }),
  );
  app.get('/a', (_req, res) => {
    res.send('<p>a</p>');
  });
  app.get('/b', (_req, res) => {
    res.send('<p>b</p>');
  });
  await request(app).get('/a?token=tok-SECRET-123');
  await request(app).get('/b');
  await cache.idle();
  const warned = recorder.warnings
    .flat()
    .filter((line) => String(line).includes('ISR_COOKIES_READ'));
  expect(warned).toHaveLength(1);
  expect(String(warned[0])).toMatch(/sessionCookies: \['connect\.sid'\]/);
  // The URL it names is redacted like every log line: a token never reaches the logger.
  expect(String(warned[0])).toContain('/a?token=***');
  expect(String(warned[0])).not.toContain('tok-SECRET-123');
});

test("the README's express-session example works as written: a session cookie gets its own render, guests and analytics cookies get HITs", async () => {
  const example = readmeExample<{ app: Express; cache: ReturnType<typeof isr> }>(
    '## Sessions and logged-in users',
    ['app', 'cache'],
  );
  cleanups.push(example.remove);
  const { app, cache } = example.module;
  cleanups.push(() => cache.close());
  const login = await request(app).get('/').set('Cookie', 'connect.sid=s%3Anobody.forged');
  expect(login.headers['x-isr-cache']).toBe('BYPASS');
  expect((await request(app).get('/')).headers['x-isr-cache']).toBe('MISS');
  await cache.idle();
  const guest = await request(app).get('/').set('Cookie', '_ga=GA1.2.3');
  expect(guest.headers['x-isr-cache']).toBe('HIT');
  expect(guest.text).toBe('<p>Hello, guest</p>');
});

describe.each(expressVersions)('cookies behind cache.handler(app) (%s)', (_name, createApp) => {
  test('the fast path never answers a request with cookies from a page whose render read them', async () => {
    const cache = isr();
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    app.use(cache);
    app.get('/hello', (req, res) => {
      res.send(`<p>Hello, ${/user=(\w+)/.exec(req.headers.cookie ?? '')?.[1] ?? 'guest'}</p>`);
    });
    app.get('/about', (_req, res) => {
      res.send('<p>About us</p>');
    });
    const server = await listen(cache.handler(app));
    cleanups.push(server.close);
    const get = async (path: string, cookie?: string) => {
      const res = await fetch(server.url(path), {
        headers: cookie === undefined ? {} : { cookie },
      });
      return `${res.headers.get('x-isr-cache')} ${await res.text()}`;
    };
    expect(await get('/hello')).toBe('MISS <p>Hello, guest</p>');
    expect(await get('/about')).toBe('MISS <p>About us</p>');
    await cache.idle();
    expect(await get('/hello')).toBe('HIT <p>Hello, guest</p>');
    expect(await get('/hello', 'user=dana')).toBe('BYPASS <p>Hello, dana</p>');
    expect(await get('/about', 'user=dana')).toBe('HIT <p>About us</p>');
  });
});

test('a cookie request for an expired page that never read cookies is told "cookie", not "the page reads cookies"', async () => {
  const cache = isr();
  cleanups.push(() => cache.close());
  const app = expressVersions[0][1]();
  app.use(cache);
  app.get('/plain', (_req, res) => {
    res.send('<p>plain</p>');
  });
  await request(app).get('/plain');
  await cache.idle();
  await cache.revalidatePath('/plain', { mode: 'expire' });
  const answer = await request(app).get('/plain').set('cookie', 'theme=dark');
  expect(answer.headers['cache-status']).toBe('express-isr; fwd=bypass; detail="cookie"');
  await cache.idle();
});
