/**
 * The answer a visitor gets on a MISS is what the app would have answered them (README, "What
 * the stored render sees"): conditionals, ranges, encodings and their own headers included,
 * while the stored copy comes only from a request of the cache's own, which nobody could shape.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import compression from 'compression';
import express, { type Express } from 'express';
import request from 'supertest';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { rawRequest } from '../helpers/http';

const cleanups = cleanupsAfterEach();

function cacheFor(options: Parameters<typeof isr>[0] = {}) {
  const cache = isr(options);
  cleanups.push(() => cache.close());
  return cache;
}

describe.each(expressVersions)('the answer on a MISS (%s)', (_name, createApp) => {
  function withStatic() {
    const dir = mkdtempSync(path.join(tmpdir(), 'isr-static-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(path.join(dir, 'app.js'), 'console.log("0123456789abcdef");\n');
    const app: Express = createApp();
    app.use(cacheFor());
    app.use(express.static(dir));
    return app;
  }

  test("an asset's own If-None-Match gets a 304, as express.static answers it", async () => {
    const app = withStatic();
    const first = await request(app).get('/app.js');
    expect(first.status).toBe(200);
    const etag = String(first.headers.etag);
    expect(etag).not.toBe('undefined');
    const again = await request(app).get('/app.js').set('If-None-Match', etag);
    expect(again.status).toBe(304);
    expect(again.text).toBe('');
  });

  test('Range: bytes=0-9 gets a 206 with those ten bytes', async () => {
    const app = withStatic();
    const part = await request(app).get('/app.js').set('Range', 'bytes=0-9');
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toMatch(/^bytes 0-9\//);
    expect(part.text).toBe('console.lo');
  });

  test('a cacheable page: the visitor whose ETag matches gets a 304 on the MISS', async () => {
    const app: Express = createApp();
    const cache = cacheFor();
    app.use(cache);
    app.get('/page', (_req, res) => {
      res.send('<h1>page</h1>'); // Express makes the ETag from the body
    });
    const probe: Express = createApp();
    probe.get('/page', (_req, res) => {
      res.send('<h1>page</h1>');
    });
    const etag = String((await request(probe).get('/page')).headers.etag);
    const miss = await request(app).get('/page').set('If-None-Match', etag);
    expect(miss.status).toBe(304);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    const hit = await request(app).get('/page');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>page</h1>');
  });

  test('compression() mounted before isr() compresses the MISS for the visitor, and the page is stored plain', async () => {
    const app: Express = createApp();
    const cache = cacheFor({ compress: false });
    app.use(compression({ threshold: 0 }));
    app.use(cache);
    const big = `<p>${'words '.repeat(1000)}</p>`;
    app.get('/page', (_req, res) => {
      res.send(big);
    });
    const miss = await rawRequest(app, '/page', { 'accept-encoding': 'gzip' });
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(miss.body).toString()).toBe(big);
    await cache.idle();
    const hit = await rawRequest(app, '/page', {});
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.body.toString()).toBe(big);
  });

  test('a response that is not shared is the one rendered for the visitor: their User-Agent and headers reach it', async () => {
    const app: Express = createApp();
    app.use(cacheFor());
    app.get('/api/whoami', (req, res) => {
      res.json({ agent: req.get('user-agent'), key: req.get('x-api-key') ?? null });
    });
    const answer = await request(app)
      .get('/api/whoami')
      .set('User-Agent', 'Googlebot/2.1')
      .set('X-Api-Key', 'k-123');
    expect(answer.headers['x-isr-cache']).toBe('BYPASS');
    expect(answer.body).toEqual({ agent: 'Googlebot/2.1', key: 'k-123' });
    // And the next one, which goes straight to the app for a while.
    const next = await request(app).get('/api/whoami').set('User-Agent', 'curl/8');
    expect(next.body).toEqual({ agent: 'curl/8', key: null });
  });

  test('a GET with a body: the stored render sees none of it', async () => {
    const app: Express = createApp();
    const cache = cacheFor();
    app.use(cache);
    app.get('/page', (req, res) => {
      // Read off the stream itself, as a route that ignores Content-Length would.
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (chunk: string) => {
        body += chunk;
      });
      req.on('end', () => res.send(`<p>body: ${body || '(none)'}</p>`));
    });
    const fat = await request(app)
      .get('/page')
      .set('Content-Type', 'text/plain')
      .send('<script>evil()</script>');
    expect(fat.text).not.toContain('evil');
    await cache.idle();
    const hit = await request(app).get('/page');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).not.toContain('evil');
  });

  test('Cache-Status says `stored` only when the page was: not for an encoding the cache cannot read', async () => {
    const app: Express = createApp();
    const cache = cacheFor();
    app.use(cache);
    app.get('/odd', (_req, res) => {
      res.set('Content-Encoding', 'x-custom').type('html').send('<p>odd</p>');
    });
    app.get('/corrupt', (_req, res) => {
      res.set('Content-Encoding', 'gzip').type('html').end(Buffer.from('not gzip at all'));
    });
    app.get('/fine', (_req, res) => {
      res.send('<p>fine</p>');
    });
    for (const path of ['/odd', '/corrupt']) {
      const first = await rawRequest(app, path, {});
      expect(String(first.headers['cache-status'])).not.toMatch(/stored/);
      await cache.idle();
      const second = await rawRequest(app, path, {});
      expect(second.headers['x-isr-cache']).not.toBe('HIT');
    }
    const fine = await rawRequest(app, '/fine', {});
    expect(String(fine.headers['cache-status'])).toMatch(/fwd=uri-miss; stored/);
  });
});
