/**
 * The edges of the MISS's relay (README, "What the stored render sees"): pages streamed in big
 * chunks, backpressure from a slow visitor, a hook that throws, a bare handler's 404, the Host
 * of a render started for a visitor with cookies, the bound on such renders, a page that
 * varies on a header the cache's render did not see, and a CSP nonce.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Express, NextFunction, Request, Response } from 'express';
import request from 'supertest';
import { isRegeneration, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { expressVersions } from '../helpers/express';
import { freshLib } from '../helpers/fresh-lib';
import { listen } from '../helpers/http';
import { sleep, within } from '../helpers/time';

const cleanups = cleanupsAfterEach();

function quietCache(options: Parameters<typeof isr>[0] = {}) {
  const recorder = errorRecorder();
  const cache = isr({ onError: recorder.onError, logger: recorder.logger, ...options });
  cleanups.push(() => cache.close());
  return { cache, recorder };
}

async function listenOn(handler: http.RequestListener): Promise<number> {
  const server = await listen(handler);
  cleanups.push(server.close);
  return server.port;
}

describe.each(expressVersions)('the MISS relay (%s)', (_name, createApp) => {
  test('a page sent with res.sendFile in chunks of 64 KB is relayed whole and stored', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'isr-big-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const page = `<!doctype html><p>${'x'.repeat(200_000)}</p>`;
    writeFileSync(path.join(dir, 'big.html'), page);
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use(cache);
    app.get('/big', (_req, res) => res.sendFile(path.join(dir, 'big.html')));
    const miss = await within(5000, request(app).get('/big'));
    expect(miss).not.toBe('timeout');
    if (miss === 'timeout') return;
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toBe(page);
    await cache.idle();
    const hit = await request(app).get('/big');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe(page);
  });

  test('a visitor who does not read holds the render back (backpressure), without the page piling up in memory', async () => {
    const { cache } = quietCache({ maxBodySize: 1024 });
    const app: Express = createApp();
    app.use(cache);
    const chunk = `<p>${randomBytes(32 * 1024).toString('hex')}</p>`; // 64 KB
    let written = 0;
    app.get('/stream', async (_req, res) => {
      res.type('html');
      for (let i = 0; i < 1000; i += 1) {
        written += 1;
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    });
    const port = await listenOn(app);
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    cleanups.push(() => socket.destroy());
    socket.pause(); // never reads
    socket.write('GET /stream HTTP/1.1\r\nHost: x\r\n\r\n');
    // Wait until the route stops writing: it waits for a 'drain' that a full socket withholds.
    let before = -1;
    const stalled = (async () => {
      while (written !== before) {
        before = written;
        await sleep(200);
      }
    })();
    expect(await within(10_000, stalled)).not.toBe('timeout');
    expect(written).toBeLessThan(500); // of 1,000 chunks (64 MB): held back, not all buffered
  });

  test('a cache.on("miss") listener that throws: the visitor still gets the page, and no empty page is stored', async () => {
    const { cache, recorder } = quietCache();
    cache.on('miss', () => {
      throw new Error('a listener bug');
    });
    const app: Express = createApp();
    app.use(cache);
    app.get('/p', (_req, res) => {
      res.send('<h1>the page</h1>');
    });
    const first = await request(app).get('/p');
    expect(first.text).toBe('<h1>the page</h1>');
    await cache.idle();
    for (let i = 0; i < 2; i += 1) {
      const next = await request(app).get('/p');
      expect(next.text).toBe('<h1>the page</h1>');
    }
    expect(recorder.errors.map((e) => e.error.message)).toContain('a listener bug');
  });

  test('a page that varies on a header the cache did not forward: the first visitor gets their own variant', async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use(cache);
    app.get('/v', (req, res) => {
      res.vary('User-Agent');
      res.send(/Mobile/.test(req.get('user-agent') ?? '') ? '<p>mobile</p>' : '<p>desktop</p>');
    });
    const phone = await request(app).get('/v').set('User-Agent', 'Phone Mobile Safari');
    expect(phone.text).toBe('<p>mobile</p>');
    await cache.idle();
    const again = await request(app).get('/v').set('User-Agent', 'Phone Mobile Safari');
    expect(again.text).toBe('<p>mobile</p>');
  });

  test("a CSP nonce set before isr(): the MISS's header matches the nonce in its body", async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use((_req: Request, res: Response, next: NextFunction) => {
      const nonce = randomBytes(8).toString('hex');
      res.locals.nonce = nonce;
      res.setHeader('Content-Security-Policy', `script-src 'nonce-${nonce}'`);
      next();
    });
    app.use(cache);
    app.get('/csp', (_req, res) => {
      res.send(`<script nonce="${res.locals.nonce}">go()</script>`);
    });
    for (let i = 0; i < 2; i += 1) {
      const page = await request(app).get('/csp');
      const header = /nonce-(\w+)/.exec(String(page.headers['content-security-policy']))?.[1];
      const body = /nonce="(\w+)"/.exec(page.text)?.[1];
      expect(header).toBe(body);
      await cache.idle();
    }
  });

  test('a render started for a visitor with cookies is given the real Host', async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use(cache);
    app.get('/h', (req, res) => {
      res.send(`<a href="//${req.get('host')}/x">x</a>`);
    });
    const port = await listenOn(app);
    const withCookie = await fetch(`http://127.0.0.1:${port}/h`, { headers: { cookie: 'a=1' } });
    expect(withCookie.headers.get('x-isr-cache')).toBe('BYPASS');
    await withCookie.text();
    await cache.idle();
    const anonymous = await fetch(`http://127.0.0.1:${port}/h`);
    expect(anonymous.headers.get('x-isr-cache')).toBe('HIT');
    expect(await anonymous.text()).toBe(`<a href="//127.0.0.1:${port}/x">x</a>`);
  });

  test('renders started for visitors with cookies: at most 8 at once', async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    let running = 0;
    let most = 0;
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    app.use(cache);
    app.get('/p/:n', async (req, res) => {
      const own = req.get('cookie') !== undefined;
      if (!own) {
        running += 1;
        most = Math.max(most, running);
        await gate;
        running -= 1;
      }
      res.send(`<p>${req.params.n}</p>`);
    });
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, n) => request(app).get(`/p/${n}`).set('Cookie', 'a=1')),
    );
    expect(answers.every((a) => a.headers['x-isr-cache'] === 'BYPASS')).toBe(true);
    release();
    await cache.idle();
    expect(most).toBeGreaterThan(0);
    expect(most).toBeLessThanOrEqual(8);
  });
});

test('with a bare handler as the app, a URL no route answers is a 404 every time, never a 500', async () => {
  const { cache } = quietCache({
    app: (req, res, next) => handler(req, res, next),
  });
  const handler = (
    req: http.IncomingMessage,
    res: http.ServerResponse,
    done: (err?: unknown) => void,
  ) =>
    cache(req, res, () => {
      if (req.url === '/page') {
        res.setHeader('content-type', 'text/html');
        res.end('<p>page</p>');
        return;
      }
      done();
    });
  const port = await listenOn((req, res) =>
    handler(req, res, () => {
      res.statusCode = 404;
      res.end('my 404');
    }),
  );
  for (let i = 0; i < 3; i += 1) {
    const res = await fetch(`http://127.0.0.1:${port}/missing`);
    expect(`${res.status} ${await res.text()}`).toBe('404 my 404');
  }
});

describe.each(expressVersions)('a visitor over TLS (%s)', (_name, createApp) => {
  test('the MISS and its regenerations render as over TLS too (req.secure, req.protocol)', async () => {
    let now = Date.now();
    const { cache } = quietCache({ now: () => now, revalidate: 10 });
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/s', (req, res) => {
      renders += 1;
      res.send(`<p>${req.protocol} ${renders}</p>`);
    });
    // What a TLS server's socket says (the client cannot set it: it is the socket's own).
    const port = await listenOn((req, res) => {
      (req.socket as unknown as { encrypted: boolean }).encrypted = true;
      app(req, res);
    });
    const get = async () => (await fetch(`http://127.0.0.1:${port}/s`)).text();
    expect(await get()).toBe('<p>https 1</p>');
    await cache.idle();
    now += 11_000;
    expect(await get()).toBe('<p>https 1</p>'); // STALE, regenerated in the background
    await cache.idle();
    expect(await get()).toBe('<p>https 2</p>');
  });
});

describe.each(expressVersions)('a page shaped by a forwarded header (%s)', (_name, createApp) => {
  function site(options: Parameters<typeof isr>[0] = {}) {
    const { cache, recorder } = quietCache(options);
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/reflect', (req, res) => {
      renders += 1;
      res.send(`<html lang="${req.get('accept-language') ?? 'en'}">hello</html>`);
    });
    app.get('/varied', (req, res) => {
      renders += 1;
      res.vary('Accept-Language');
      res.send(`<html lang="${req.get('accept-language') ?? 'en'}">hello</html>`);
    });
    return { app, cache, recorder, renders: () => renders };
  }

  test('reading Accept-Language without Vary: never stored, each visitor gets their own page', async () => {
    const { app, cache } = site();
    const attacker = await request(app)
      .get('/reflect')
      .set('Accept-Language', '"><script>alert(1)</script>');
    expect(attacker.headers['x-isr-cache']).toBe('BYPASS');
    expect(attacker.headers['cache-status']).toMatch(/reads accept-language without Vary/);
    await cache.idle();
    const victim = await request(app).get('/reflect').set('Accept-Language', 'de-DE');
    expect(victim.headers['x-isr-cache']).not.toBe('HIT');
    expect(victim.text).toBe('<html lang="de-DE">hello</html>');
  });

  test('with Vary: Accept-Language, each language is stored apart', async () => {
    const { app, cache, renders } = site();
    expect((await request(app).get('/varied').set('Accept-Language', 'fr')).text).toBe(
      '<html lang="fr">hello</html>',
    );
    await cache.idle();
    const de = await request(app).get('/varied').set('Accept-Language', 'de');
    expect(de.text).toBe('<html lang="de">hello</html>');
    await cache.idle();
    const fr = await request(app).get('/varied').set('Accept-Language', 'fr');
    expect(fr.headers['x-isr-cache']).toBe('HIT');
    expect(fr.text).toBe('<html lang="fr">hello</html>');
    expect(renders()).toBe(2);
  });

  test('listing forwardHeaders yourself does not switch the check off; a header of your own is yours to trust', async () => {
    const { app } = site({ forwardHeaders: ['accept-language', 'x-forwarded-proto'] });
    const fr = await request(app).get('/reflect').set('Accept-Language', 'fr');
    expect(fr.headers['cache-status']).toMatch(/reads accept-language without Vary/);
    const own = quietCache({ forwardHeaders: ['accept-language', 'x-forwarded-proto'] });
    const proto = createApp();
    proto.set('trust proxy', true);
    proto.use(own.cache);
    proto.get('/proto', (req, res) => {
      res.send(`<p>${req.protocol}</p>`);
    });
    await request(proto).get('/proto').set('X-Forwarded-Proto', 'https');
    await own.cache.idle();
    const hit = await request(proto).get('/proto').set('X-Forwarded-Proto', 'https');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<p>https</p>');
  });

  test('a logger that lists the headers first does not hide the page reading Accept-Language', async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use(cache);
    app.use((req, _res, next) => {
      void Object.keys(req.headers).length; // an access log listing what came in
      next();
    });
    app.get('/lang', (req, res) => {
      res.send(`<p>${req.acceptsLanguages('fr', 'de') || 'en'}</p>`);
    });
    const fr = await request(app).get('/lang').set('Accept-Language', 'fr');
    expect(fr.headers['cache-status']).toMatch(/reads accept-language without Vary/);
    await cache.idle();
    const de = await request(app).get('/lang').set('Accept-Language', 'de');
    expect(de.text).toBe('<p>de</p>');
  });
});

test('ISR_UNKEYED_HEADER: printed once, naming the header and how to vary on it', async () => {
  const express = (await import('express')).default;
  const recorder = errorRecorder();
  const cache = freshLib().isr({ logger: recorder.logger });
  cleanups.push(() => cache.close());
  const app = express();
  app.use(cache);
  app.get('/:page', (req, res) => {
    res.send(`<p>${req.acceptsLanguages('fr', 'en') || 'en'}</p>`);
  });
  await request(app).get('/a').set('Accept-Language', 'fr');
  await request(app).get('/b').set('Accept-Language', 'fr');
  await cache.idle();
  const warned = recorder.warnings.flat().filter((l) => String(l).includes('ISR_UNKEYED_HEADER'));
  expect(warned).toHaveLength(1);
  expect(String(warned[0])).toMatch(
    /\/a reads accept-language without Vary.*res\.vary\('accept-language'\)/,
  );
});

describe.each(expressVersions)('the MISS relay, second review (%s)', (_name, createApp) => {
  test('a first visitor who does not read does not hold back the page for the others', async () => {
    const { cache } = quietCache({ regenerateTimeout: 1500 });
    const app: Express = createApp();
    app.use(cache);
    const chunk = `<p>${'y'.repeat(64 * 1024)}</p>`;
    app.get('/long', async (_req, res) => {
      res.type('html');
      for (let i = 0; i < 60; i += 1) {
        if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve));
      }
      res.end();
    });
    const port = await listenOn(app);
    const stalled = net.connect(port, '127.0.0.1');
    stalled.on('error', () => {});
    cleanups.push(() => stalled.destroy());
    stalled.pause(); // the first visitor never reads
    stalled.write('GET /long HTTP/1.1\r\nHost: x\r\n\r\n');
    await sleep(100); // its render is under way
    const other = await fetch(`http://127.0.0.1:${port}/long`);
    expect(other.status).toBe(200);
    expect((await other.text()).length).toBe(60 * chunk.length);
    await cache.idle();
    const hit = await fetch(`http://127.0.0.1:${port}/long`);
    expect(hit.headers.get('x-isr-cache')).toBe('HIT');
    await hit.text();
  });

  test('a page that sets a cookie, relayed: its cookie goes beside one set before isr()', async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use((_req, res, next) => {
      res.cookie('ab', 'B');
      next();
    });
    app.use(cache);
    let uses = 0;
    app.get('/magic', (_req, res) => {
      uses += 1;
      res.cookie('sid', 'signed-in').send('<p>you are signed in</p>');
    });
    const res = await request(app).get('/magic?token=t1');
    const cookies = ([] as string[])
      .concat(res.headers['set-cookie'] ?? [])
      .map((c) => c.split(';')[0]);
    expect(cookies.sort()).toEqual(['ab=B', 'sid=signed-in']);
    expect(res.text).toBe('<p>you are signed in</p>');
    expect(uses).toBe(1);
  });

  test('a cacheControl builder that throws: the visitor gets their own render, clean', async () => {
    const { cache } = quietCache({
      cacheControl: () => {
        throw new Error('builder bug');
      },
    });
    const app: Express = createApp();
    app.use(cache);
    app.get('/cc', (req, res) => {
      // The cache's render sends a Content-Length; the visitor's own streams.
      if (isRegeneration(req)) {
        res.send('<p>the copy for everyone, longer than the stream</p>');
        return;
      }
      res.write('<p>stream');
      res.end('ed</p>');
    });
    const res = await request(app).get('/cc');
    expect(res.status).toBe(200);
    expect(res.text).toBe('<p>streamed</p>');
    expect(res.headers['content-length']).toBeUndefined();
  });

  test("a 503's own Retry-After is kept", async () => {
    const { cache } = quietCache();
    const app: Express = createApp();
    app.use(cache);
    app.get('/down', (_req, res) => {
      res.set('Retry-After', '3600').status(503).send('<p>maintenance</p>');
    });
    const res = await request(app).get('/down');
    expect(res.status).toBe(503);
    expect(res.headers['retry-after']).toBe('3600');
  });
});
