/**
 * The webhook a CMS calls: `app.use('/api/revalidate', revalidateRouter(cache, { secret }))`.
 * Covers the ways to authenticate (query, Bearer, body field, HMAC signature, `verify` hook),
 * the ways to name targets (path(s), tag(s), type, mode, from the query or a JSON body), every
 * refusal (401, 400, 405, 413, 415, 503) with a JSON `{ error }` and nothing invalidated, with
 * and without `express.json()` mounted before the router, and the router's construction checks.
 */
import { createHmac } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express5, { type Express, type RequestHandler } from 'express';
import request from 'supertest';
import { type IsrOptions, isr, revalidateRouter } from '../../lib';
import type { RevalidateRouterOptions } from '../../lib/invalidation/webhook/router';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { recordedCache } from '../helpers/site';

// The second copy of Express, installed under its alias (see helpers/express.ts).
const express4 = require('express4') as typeof express5;

/** Long enough not to be warned about, with upper-case letters to lower-case. */
const SECRET = 'Webhook-Secret-0123456789-ABCDEF';
const ENDPOINT = '/api/revalidate';

/** The cached pages every test starts with, and the tags their route gives them. */
const PAGES: Record<string, string[]> = {
  '/blog': ['posts'],
  '/blog/hello': ['posts', 'post-hello'],
  '/blog/other': ['posts'],
  '/blogger': [],
  '/about': [],
};
const URLS = Object.keys(PAGES);

const page = (url: string, version: string) => `<p>${url} ${version}</p>`;

/** express.json() of the same major as the app. */
function jsonParser(version: string): RequestHandler {
  return (version === 'express 5' ? express5.json() : express4.json()) as RequestHandler;
}

const cleanups = cleanupsAfterEach();

interface SetupOptions {
  json?: boolean;
  router?: Partial<RevalidateRouterOptions>;
  isr?: IsrOptions;
}

function setup(createApp: ExpressFactory, version: string, options: SetupOptions = {}) {
  const { recorder, cache } = recordedCache(options.isr);
  const app = createApp();
  const content = { version: 'v1' };
  const renders = new Map<string, number>();
  app.use(cache);
  if (options.json) app.use(jsonParser(version));
  app.use(ENDPOINT, revalidateRouter(cache, { secret: SECRET, ...options.router }));
  app.use((req, res) => {
    renders.set(req.path, (renders.get(req.path) ?? 0) + 1);
    const tags = PAGES[req.path] ?? [];
    if (tags.length > 0) res.isr({ tags });
    res.send(page(req.originalUrl, content.version));
  });
  cleanups.push(() => cache.close());
  return {
    app,
    cache,
    content,
    recorder,
    renders: (path: string) => renders.get(path) ?? 0,
    totalRenders: () => [...renders.values()].reduce((a, b) => a + b, 0),
  };
}

type Site = ReturnType<typeof setup>;

async function visit(app: Express, url: string) {
  const response = await request(app).get(url);
  return { status: response.status, state: response.headers['x-isr-cache'], body: response.text };
}

/** Every page rendered once and stored. */
async function warm(s: Site) {
  for (const url of URLS) expect((await visit(s.app, url)).state).toBe('MISS');
  await s.cache.idle();
  await expectUntouched(s);
}

/** Nothing was invalidated: every page is still a HIT with its first render, which ran once. */
async function expectUntouched(s: Site, label = '') {
  for (const url of URLS) {
    expect({ label, url, ...(await visit(s.app, url)) }).toEqual({
      label,
      url,
      status: 200,
      state: 'HIT',
      body: page(url, 'v1'),
    });
  }
  expect({ label, renders: s.totalRenders() }).toEqual({ label, renders: URLS.length });
}

/** The cache state each page is in on its next visit (visiting a STALE one regenerates it). */
async function states(s: Site): Promise<Record<string, string>> {
  const found: Record<string, string> = {};
  for (const url of URLS) found[url] = (await visit(s.app, url)).state as string;
  return found;
}

function expectJsonError(
  response: { status: number; headers: Record<string, any>; body: any },
  status: number,
  pattern: RegExp,
  label = '',
) {
  expect({ label, status: response.status }).toEqual({ label, status });
  expect(response.headers['content-type']).toMatch(/^application\/json/);
  expect(typeof response.body.error).toBe('string');
  expect({ label, error: response.body.error }).toEqual({
    label,
    error: expect.stringMatching(pattern),
  });
}

const post = (app: Express, query = '') => request(app).post(`${ENDPOINT}${query}`);

/**
 * POSTs exact bytes (supertest would serialise a Buffer as JSON) on a throwaway server, and
 * answers in supertest's shape: status, headers, parsed JSON body.
 */
async function postBytes(
  app: Express,
  path: string,
  bytes: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          path,
          method: 'POST',
          agent: false,
          headers: { ...headers, 'content-length': String(bytes.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              body = text;
            }
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(bytes);
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
const withSecret = (more = '') => `?secret=${encodeURIComponent(SECRET)}${more}`;

const parserModes: [string, boolean][] = [
  ['without a body parser', false],
  ['with express.json() mounted before the router', true],
];

describe.each(expressVersions)('revalidateRouter (%s)', (version, createApp) => {
  describe.each(parserModes)('%s', (_mode, json) => {
    const start = async (options: SetupOptions = {}) => {
      const s = setup(createApp, version, { json, ...options });
      await warm(s);
      return s;
    };

    test('the seed curl form: POST ?secret=…&path=/blog/hello → 200, that page is STALE next', async () => {
      const s = await start();
      const response = await post(s.app, withSecret('&path=/blog/hello'));
      expect(response.status).toBe(200);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toEqual({
        revalidated: true,
        paths: ['/blog/hello'],
        tags: [],
        mode: 'stale',
        now: expect.any(Number),
      });
      expect(await states(s)).toEqual({
        '/blog': 'HIT',
        '/blog/hello': 'STALE',
        '/blog/other': 'HIT',
        '/blogger': 'HIT',
        '/about': 'HIT',
      });
    });

    test("Authorization: Bearer with a JSON body { tags: ['posts'], mode: 'expire' }", async () => {
      const s = await start();
      s.content.version = 'v2';
      const response = await post(s.app)
        .set('Authorization', `Bearer ${SECRET}`)
        .send({ tags: ['posts'], mode: 'expire' });
      expect(response.status).toBe(200);
      expect(response.body).toEqual({
        revalidated: true,
        paths: [],
        tags: ['posts'],
        mode: 'expire',
        now: expect.any(Number),
      });
      for (const url of ['/blog', '/blog/hello', '/blog/other']) {
        expect({ url, ...(await visit(s.app, url)) }).toEqual({
          url,
          status: 200,
          state: 'MISS',
          body: page(url, 'v2'),
        });
      }
      expect((await visit(s.app, '/about')).state).toBe('HIT');
    });

    test('the secret as a field of the JSON body', async () => {
      const s = await start();
      const response = await post(s.app).send({ secret: SECRET, path: '/about' });
      expect(response.status).toBe(200);
      expect(response.body.paths).toEqual(['/about']);
      expect((await states(s))['/about']).toBe('STALE');
    });

    test('paths and tags arrays in the body', async () => {
      const s = await start();
      const response = await post(s.app, withSecret()).send({
        paths: ['/about', '/blogger'],
        tags: ['post-hello'],
      });
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({
        paths: ['/about', '/blogger'],
        tags: ['post-hello'],
        mode: 'stale',
      });
      expect(await states(s)).toEqual({
        '/blog': 'HIT',
        '/blog/hello': 'STALE',
        '/blog/other': 'HIT',
        '/blogger': 'STALE',
        '/about': 'STALE',
      });
    });

    test('repeated ?path= query parameters, and ?tag=', async () => {
      const s = await start();
      const response = await post(s.app, withSecret('&path=/about&path=/blogger&tag=post-hello'));
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ paths: ['/about', '/blogger'], tags: ['post-hello'] });
      expect(await states(s)).toEqual({
        '/blog': 'HIT',
        '/blog/hello': 'STALE',
        '/blog/other': 'HIT',
        '/blogger': 'STALE',
        '/about': 'STALE',
      });
    });

    test('type=layout covers the path and everything below it, not /blogger', async () => {
      const s = await start();
      const response = await post(s.app, withSecret('&path=/blog&type=layout'));
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ paths: ['/blog'], tags: [], mode: 'stale' });
      expect(await states(s)).toEqual({
        '/blog': 'STALE',
        '/blog/hello': 'STALE',
        '/blog/other': 'STALE',
        '/blogger': 'HIT',
        '/about': 'HIT',
      });
    });

    test("mode: 'regenerate' in the body: once idle, the next visitors get the new pages as HITs", async () => {
      const s = await start();
      s.content.version = 'v2';
      const response = await post(s.app, withSecret()).send({ tag: 'posts', mode: 'regenerate' });
      expect(response.status).toBe(200);
      expect(response.body.mode).toBe('regenerate');
      await s.cache.idle();
      for (const url of ['/blog', '/blog/hello', '/blog/other']) {
        expect({ url, ...(await visit(s.app, url)) }).toEqual({
          url,
          status: 200,
          state: 'HIT',
          body: page(url, 'v2'),
        });
      }
      expect((await visit(s.app, '/about')).body).toBe(page('/about', 'v1'));
      expect(s.renders('/about')).toBe(1);
    });

    test('exactly maxTargets (100) targets are accepted', async () => {
      const s = await start();
      const paths = Array.from({ length: 99 }, (_, i) => `/nowhere/${i}`);
      const response = await post(s.app, withSecret()).send({ paths, tag: 'post-hello' });
      expect(response.status).toBe(200);
      expect(response.body.paths).toHaveLength(99);
      expect((await states(s))['/blog/hello']).toBe('STALE');
    });

    test('a wrong, missing, truncated, extended or lower-cased secret → 401 JSON, nothing invalidated', async () => {
      const s = await start();
      const attempts: [string, () => request.Test][] = [
        ['wrong secret in the query', () => post(s.app, '?secret=nope&path=/blog/hello')],
        ['no secret at all', () => post(s.app, '?path=/blog/hello')],
        [
          'a prefix of the secret',
          () => post(s.app, `?secret=${SECRET.slice(0, -1)}&path=/blog/hello`),
        ],
        ['the secret plus one character', () => post(s.app, `?secret=${SECRET}x&path=/blog/hello`)],
        [
          'the secret lower-cased',
          () => post(s.app, `?secret=${SECRET.toLowerCase()}&path=/blog/hello`),
        ],
        ['an empty secret', () => post(s.app, '?secret=&path=/blog/hello')],
        [
          'a wrong Bearer token',
          () =>
            post(s.app)
              .set('Authorization', `Bearer ${SECRET.toUpperCase()}`)
              .send({ tags: ['posts'] }),
        ],
        [
          'the secret in a Basic header',
          () =>
            post(s.app)
              .set('Authorization', `Basic ${SECRET}`)
              .send({ tags: ['posts'] }),
        ],
        [
          'a wrong secret in the body',
          () => post(s.app).send({ secret: `${SECRET} `, paths: ['/about'] }),
        ],
        [
          'the secret in the body, but not a string',
          () => post(s.app).send({ secret: [SECRET], paths: ['/about'] }),
        ],
      ];
      for (const [label, attempt] of attempts) {
        expectJsonError(await attempt(), 401, /secret/i, label);
        await expectUntouched(s, label);
      }
    });

    test('every invalid target or option → 400 JSON naming the problem, nothing invalidated', async () => {
      const s = await start({ router: {} });
      const q = withSecret;
      const cases: [string, () => request.Test, RegExp][] = [
        ['path without a leading /', () => post(s.app, q()).send({ path: 'blog/hello' }), /path/],
        ['path without a leading / (query)', () => post(s.app, q('&path=blog/hello')), /path/],
        [
          'path with a control character',
          () => post(s.app, q()).send({ path: '/blog/hello\u0000' }),
          /control/,
        ],
        ['path with a newline (query)', () => post(s.app, q('&path=/blog/hello%0A')), /control/],
        [
          'tag with a control character',
          () => post(s.app, q()).send({ tag: 'po\u001bsts' }),
          /control/,
        ],
        ['empty path', () => post(s.app, q()).send({ path: '' }), /empty/],
        ['empty path (query)', () => post(s.app, q('&path=')), /empty/],
        ['empty tag', () => post(s.app, q()).send({ tags: [''] }), /empty/],
        ['path is a number', () => post(s.app, q()).send({ path: 5 }), /path.*string/],
        ['path is null', () => post(s.app, q()).send({ path: null }), /path/],
        [
          'paths is a string',
          () => post(s.app, q()).send({ paths: '/blog/hello' }),
          /paths.*array/,
        ],
        ['paths holds a number', () => post(s.app, q()).send({ paths: ['/blog', 7] }), /paths/],
        ['tags is a string', () => post(s.app, q()).send({ tags: 'posts' }), /tags.*array/],
        ['tag is an object', () => post(s.app, q()).send({ tag: { name: 'posts' } }), /tag/],
        [
          'unknown mode',
          () => post(s.app, q()).send({ path: '/blog/hello', mode: 'later' }),
          /mode/,
        ],
        ['unknown mode (query)', () => post(s.app, q('&path=/blog/hello&mode=purge')), /mode/],
        ['unknown type', () => post(s.app, q()).send({ path: '/blog', type: 'section' }), /type/],
        ['unknown type (query)', () => post(s.app, q('&path=/blog&type=Layout')), /type/],
        ['no target (empty object)', () => post(s.app, q()).send({}), /nothing|target/i],
        ['no target (no body)', () => post(s.app, q()), /nothing|target/i],
        [
          'more than 100 targets',
          () =>
            post(s.app, q()).send({
              paths: Array.from({ length: 101 }, (_, i) => `/blog/${i}`),
            }),
          /too many|at most/i,
        ],
        [
          'more than 100 targets, paths and tags together',
          () =>
            post(s.app, q()).send({
              paths: Array.from({ length: 60 }, (_, i) => `/blog/${i}`),
              tags: ['posts', ...Array.from({ length: 40 }, (_, i) => `t${i}`)],
            }),
          /too many|at most/i,
        ],
        [
          'a valid path next to an invalid one',
          () => post(s.app, q()).send({ paths: ['/blog/hello', 'about'] }),
          /path/,
        ],
        [
          'a valid tag next to an invalid path',
          () => post(s.app, q()).send({ tags: ['posts'], path: '/blog?x=1' }),
          /path/,
        ],
        [
          'a valid target with an unknown mode in the query',
          () => post(s.app, q('&mode=x')).send({ tags: ['posts'] }),
          /mode/,
        ],
      ];
      for (const [label, send, pattern] of cases) {
        expectJsonError(await send(), 400, pattern, label);
        await expectUntouched(s, label);
      }
    });

    test('a mode or type nested 5,000 levels deep → 400 JSON, nothing invalidated', async () => {
      const s = await start();
      const deepObject = `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`;
      const deepArray = `${'['.repeat(5000)}"layout"${']'.repeat(5000)}`;
      const cases: [string, string, RegExp][] = [
        ['mode', `{"tags":["posts"],"mode":${deepObject}}`, /mode/],
        ['type', `{"paths":["/blog"],"type":${deepArray}}`, /type/],
      ];
      for (const [label, body, pattern] of cases) {
        const response = await post(s.app, withSecret())
          .set('Content-Type', 'application/json')
          .send(body);
        expectJsonError(response, 400, pattern, label);
        await expectUntouched(s, label);
      }
    });

    test('maxTargets is configurable', async () => {
      const s = await start({ router: { maxTargets: 2 } });
      const response = await post(s.app, withSecret()).send({
        paths: ['/about'],
        tags: ['a', 'b'],
      });
      expectJsonError(response, 400, /too many|at most/i);
      await expectUntouched(s);
    });

    test('a non-JSON content type with a body → 415 JSON, nothing invalidated', async () => {
      const s = await start();
      const textPlain = await post(s.app, withSecret())
        .set('Content-Type', 'text/plain')
        .send(JSON.stringify({ path: '/blog/hello' }));
      expectJsonError(textPlain, 415, /JSON|content-type/i, 'text/plain');
      const form = await post(s.app, withSecret())
        .set('Content-Type', 'application/x-www-form-urlencoded')
        .send('path=/blog/hello');
      expectJsonError(form, 415, /JSON|content-type/i, 'form');
      await expectUntouched(s);
    });

    test('GET → 405 with Allow: POST', async () => {
      const s = await start();
      const response = await request(s.app).get(`${ENDPOINT}${withSecret('&path=/blog/hello')}`);
      expect(response.status).toBe(405);
      expect(response.headers.allow).toBe('POST');
      expect(typeof response.body.error).toBe('string');
      await expectUntouched(s);
    });

    test('a store that cannot record the invalidation → 503 JSON', async () => {
      const store = {
        get: async (_key: string) => undefined,
        set: async (_key: string, _value: unknown): Promise<boolean> => {
          throw new Error('store is down');
        },
        delete: async (_key: string) => true,
      };
      const s = setup(createApp, version, { json, isr: { store } });
      const response = await post(s.app, withSecret('&path=/blog/hello'));
      expectJsonError(response, 503, /.+/);
      expect(response.body.revalidated).toBeUndefined();
    });
  });

  describe('bodies only the router itself reads (no body parser)', () => {
    const start = async (router: Partial<RevalidateRouterOptions> = {}) => {
      const s = setup(createApp, version, { router });
      await warm(s);
      return s;
    };
    const json = (app: Express, query = withSecret()) =>
      post(app, query).set('Content-Type', 'application/json');

    test('unparsable JSON, a JSON array / number / null / string, invalid UTF-8 → 400, nothing invalidated', async () => {
      const s = await start();
      const invalidUtf8 = Buffer.concat([
        Buffer.from('{"path":"/blog/hello'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]);
      const cases: [string, string | Buffer, RegExp][] = [
        ['truncated JSON', '{"path": "/blog/hello"', /JSON/],
        ['single quotes', "{'path': '/blog/hello'}", /JSON/],
        ['a JSON array', '["/blog/hello"]', /object/],
        ['a JSON number', '5', /object/],
        ['JSON null', 'null', /object/],
        ['a JSON string', '"/blog/hello"', /object/],
        ['invalid UTF-8 bytes', invalidUtf8, /UTF-?8/i],
      ];
      for (const [label, body, pattern] of cases) {
        const response = await postBytes(s.app, `${ENDPOINT}${withSecret()}`, Buffer.from(body), {
          'content-type': 'application/json',
        });
        expectJsonError(response, 400, pattern, label);
        await expectUntouched(s, label);
      }
    });

    test('a body over 64 KB → 413 JSON, nothing invalidated', async () => {
      const s = await start();
      const body = JSON.stringify({ path: '/blog/hello', padding: 'x'.repeat(70 * 1024) });
      expectJsonError(await json(s.app).send(body), 413, /bytes|large|limit/i);
      await expectUntouched(s);
      const small = setup(createApp, version, { router: { maxBodySize: 100 } });
      const over = await post(small.app, withSecret())
        .set('Content-Type', 'application/json')
        .send(JSON.stringify({ tags: ['posts'], padding: 'x'.repeat(200) }));
      expectJsonError(over, 413, /bytes|large|limit/i, 'maxBodySize: 100');
    });

    test('without a secret in the header or query, a body that cannot be read is a 401, not a hint about the body', async () => {
      const s = await start();
      const cases: [string, Buffer, string][] = [
        ['unparsable JSON', Buffer.from('{"path": "/blog/hello"'), 'application/json'],
        ['a non-JSON body', Buffer.from('path=/blog/hello'), 'text/plain'],
        [
          'a body over 64 KB',
          Buffer.from(JSON.stringify({ x: 'x'.repeat(70 * 1024) })),
          'application/json',
        ],
        ['a wrong Bearer and unparsable JSON', Buffer.from('{'), 'application/json'],
      ];
      for (const [label, body, type] of cases) {
        const headers: Record<string, string> = { 'content-type': type };
        if (label.startsWith('a wrong Bearer')) headers.authorization = 'Bearer not-the-secret';
        const response = await postBytes(s.app, ENDPOINT, body, headers);
        expectJsonError(response, 401, /secret/, label);
        await expectUntouched(s, label);
      }
      // With the secret in the header, the same bodies get what is wrong with them.
      const withBearer = await postBytes(s.app, ENDPOINT, Buffer.from('{'), {
        'content-type': 'application/json',
        authorization: `Bearer ${SECRET}`,
      });
      expectJsonError(withBearer, 400, /JSON/, 'Bearer and unparsable JSON');
    });

    test('an HMAC signature of the exact raw body authenticates the call without a secret', async () => {
      const s = await start({
        signature: { header: 'x-signature', algorithm: 'sha256', prefix: 'sha256=' },
      });
      const sign = (body: string, key = SECRET) =>
        `sha256=${createHmac('sha256', key).update(body).digest('hex')}`;
      const body = JSON.stringify({ tags: ['post-hello'] });

      const forged = await json(s.app, '')
        .set('X-Signature', sign(body, 'not-the-secret-0123456789'))
        .send(body);
      expectJsonError(forged, 401, /secret|signature/i, 'signed with another key');
      const tampered = await json(s.app, '')
        .set('X-Signature', sign(body))
        .send(JSON.stringify({ tags: ['posts'] }));
      expectJsonError(tampered, 401, /secret|signature/i, 'signature of another body');
      const unprefixed = await json(s.app, '')
        .set('X-Signature', sign(body).slice('sha256='.length))
        .send(body);
      expectJsonError(unprefixed, 401, /secret|signature/i, 'no prefix');
      await expectUntouched(s);

      const signed = await json(s.app, '').set('X-Signature', sign(body)).send(body);
      expect(signed.status).toBe(200);
      expect(signed.body.tags).toEqual(['post-hello']);
      expect((await states(s))['/blog/hello']).toBe('STALE');
    });

    test('a verify(req, rawBody) hook gets the raw bytes and can accept a call', async () => {
      const seen: Buffer[] = [];
      const s = await start({
        verify: (req, raw) => {
          seen.push(Buffer.from(raw));
          return req.headers['x-cms-token'] === 'cms-says-yes';
        },
      });
      const body = Buffer.from('{"path":"/about", "note":"caf\u00e9"}', 'utf8');

      const send = (token: string) =>
        postBytes(s.app, ENDPOINT, body, {
          'content-type': 'application/json; charset=utf-8',
          'x-cms-token': token,
        });
      expectJsonError(await send('no'), 401, /secret/i);
      await expectUntouched(s);

      const accepted = await send('cms-says-yes');
      expect(accepted.status).toBe(200);
      expect(accepted.body.paths).toEqual(['/about']);
      expect(seen).toHaveLength(2);
      expect(seen[1].equals(body)).toBe(true);
      expect((await states(s))['/about']).toBe('STALE');
    });
  });

  test('with express.json() mounted before, maxBodySize still applies to the declared size: 413', async () => {
    const s = setup(createApp, version, { json: true, router: { maxBodySize: 100 } });
    await warm(s);
    const response = await post(s.app, withSecret())
      .set('Content-Type', 'application/json')
      .send(JSON.stringify({ path: '/blog/hello', padding: 'x'.repeat(200) }));
    expectJsonError(response, 413, /bytes|large|limit/i);
    await expectUntouched(s);
  });

  test('with express.json() mounted before, a malformed body gets a 4xx and invalidates nothing', async () => {
    const s = setup(createApp, version, { json: true });
    await warm(s);
    const response = await post(s.app, withSecret('&path=/blog/hello'))
      .set('Content-Type', 'application/json')
      .send('{"path": "/blog/hello"');
    // This answer comes from Express, not from the router: express.json() fails to parse the
    // body and hands the error to the app's error handling (Express's default answers 400 in
    // HTML). Only the status class and the absence of any invalidation are the router's concern.
    expect(response.status).toBeGreaterThanOrEqual(400);
    expect(response.status).toBeLessThan(500);
    await expectUntouched(s);
  });
});

describe('revalidateRouter construction', () => {
  const cache = isr();
  afterAll(() => cache.close());

  test('refuses to be built without a secret: TypeError naming `secret`', () => {
    expect(() => revalidateRouter(cache, {} as any)).toThrow(TypeError);
    expect(() => revalidateRouter(cache, {} as any)).toThrow(/secret/);
    expect(() => revalidateRouter(cache, { secret: '' })).toThrow(TypeError);
    expect(() => revalidateRouter(cache, { secret: '' })).toThrow(/secret/);
    expect(() => revalidateRouter(cache, { secret: undefined as any })).toThrow(/secret/);
    expect(() => revalidateRouter(cache, undefined as any)).toThrow(TypeError);
  });

  test('a short secret is warned about once (ISR_SHORT_SECRET) through the logger option', () => {
    // The warning is printed once per process (per test file under Jest): this is the only
    // test in this file that uses a short secret.
    const warnings: unknown[][] = [];
    const logger = { warn: (...args: unknown[]) => warnings.push(args) };
    revalidateRouter(cache, { secret: 'a-long-enough-secret-value', logger });
    expect(warnings).toHaveLength(0);
    revalidateRouter(cache, { secret: 'short', logger });
    revalidateRouter(cache, { secret: 'tiny', logger });
    expect(warnings).toHaveLength(1);
    expect(String(warnings[0][0])).toContain('ISR_SHORT_SECRET');
  });
});
