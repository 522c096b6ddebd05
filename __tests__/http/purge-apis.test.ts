/**
 * `cloudflarePurge` and `fastlyPurge` against local HTTP servers of the test's own that check
 * every request against the APIs' documentation — the only honest option without their
 * network. What each server checks is written next to it, with where the docs say so.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Request, type Response } from 'express';
import { isr, revalidateRouter } from '../../lib';
import { cloudflarePurge, fastlyPurge, type PurgeEvent } from '../../lib/purge';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { listen } from '../helpers/http';

const cleanups = cleanupsAfterEach();
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353';
const CF_TOKEN = 'cf-token-with-cache-purge';
const SERVICE = 'SU1Z0isxPaozGVKXdv0eY';
const FASTLY_TOKEN = 'fastly-token-purge-select';
const SECRET = 'a-webhook-secret-long-enough-0123456789';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: unknown;
  at: number;
}

/** A fake API: `check` answers a documented error, or `undefined` for a success. */
async function fakeApi(
  check: (seen: Seen) => { status: number; body: unknown } | undefined,
  success: (seen: Seen) => unknown,
) {
  const seen: Seen[] = [];
  /** Answers to give first, whatever the request (outages, rate limits). */
  const script: { status: number; headers?: Record<string, string>; body?: string }[] = [];
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => {
      let body: unknown = raw;
      try {
        body = raw === '' ? undefined : JSON.parse(raw);
      } catch {}
      const entry = {
        method: req.method ?? '',
        path: req.url ?? '',
        headers: req.headers,
        body,
        at: Date.now(),
      };
      seen.push(entry);
      const scripted = script.shift();
      if (scripted !== undefined) {
        res.writeHead(scripted.status, scripted.headers).end(scripted.body ?? '');
        return;
      }
      const problem = check(entry);
      const answer = problem ?? { status: 200, body: success(entry) };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, script };
}

/**
 * Cloudflare's API (developers.cloudflare.com, "Purge Cached Content" and "Invalidate cached
 * content"): `POST /zones/{zone_id}/purge_cache` or `/invalidate_cache`, `Authorization:
 * Bearer <token>`, a JSON body with one of `tags`, `files`, `prefixes` (`hosts`,
 * `purge_everything`), at most 30 items per call (the API reference; 100 on the newer limits
 * page), a prefix without its scheme, a file a full URL. Errors as Cloudflare's envelope.
 */
function cloudflareApi() {
  const fail = (status: number, code: number, message: string) => ({
    status,
    body: { success: false, errors: [{ code, message }], messages: [], result: null },
  });
  return fakeApi(
    (s) => {
      const match = /^\/client\/v4\/zones\/([^/]+)\/(purge_cache|invalidate_cache)$/.exec(s.path);
      if (s.method !== 'POST' || match === null) return fail(404, 7003, 'No route for that URI');
      if (match[1] !== ZONE) return fail(404, 1049, 'zone not found');
      if (s.headers.authorization !== `Bearer ${CF_TOKEN}`)
        return fail(403, 10000, 'Authentication error');
      if (!String(s.headers['content-type']).startsWith('application/json'))
        return fail(
          400,
          1012,
          'Request must contain one of "purge_everything", "files", "tags", "hosts" or "prefixes"',
        );
      const body = s.body as Record<string, unknown>;
      const fields = Object.keys(body ?? {});
      if (fields.length !== 1 || !['tags', 'files', 'prefixes', 'hosts'].includes(fields[0]))
        return fail(
          400,
          1012,
          'Request must contain one of "purge_everything", "files", "tags", "hosts" or "prefixes"',
        );
      const items = body[fields[0]];
      if (!Array.isArray(items) || items.length === 0 || !items.every((i) => typeof i === 'string'))
        return fail(400, 1012, `${fields[0]} must be a non-empty array of strings`);
      if (items.length > 30)
        return fail(400, 1018, `Only 30 ${fields[0]} may be purged per request`);
      if (fields[0] === 'files' && !items.every((i) => /^https?:\/\/[^/]+\//.test(i)))
        return fail(400, 1016, 'files must be full URLs');
      if (fields[0] === 'prefixes' && !items.every((i) => !/^[a-z]+:\/\//i.test(i)))
        return fail(400, 1016, 'prefixes must not include the scheme');
      return undefined;
    },
    () => ({ success: true, errors: [], messages: [], result: { id: ZONE } }),
  );
}

/**
 * Fastly's API (fastly.com/documentation/reference/api/purging): `POST
 * /service/{service_id}/purge` with `{"surrogate_keys":[…]}`, up to 256 keys; `POST
 * /purge/{cached_url}` (host and path, no scheme) for one URL; `Fastly-Key: <token>`;
 * `Fastly-Soft-Purge: 1` for a soft purge.
 */
function fastlyApi() {
  const fail = (status: number, msg: string) => ({ status, body: { msg, detail: msg } });
  return fakeApi(
    (s) => {
      if (s.method !== 'POST') return fail(405, 'Method not allowed');
      if (s.headers['fastly-key'] !== FASTLY_TOKEN)
        return fail(401, 'Provided credentials are missing or invalid');
      const soft = s.headers['fastly-soft-purge'];
      if (soft !== undefined && soft !== '1') return fail(400, 'Fastly-Soft-Purge must be 1');
      if (s.path === `/service/${SERVICE}/purge`) {
        const keys = (s.body as { surrogate_keys?: unknown })?.surrogate_keys;
        if (!String(s.headers['content-type']).startsWith('application/json'))
          return fail(400, 'JSON body expected');
        if (!Array.isArray(keys) || keys.length === 0) return fail(400, 'surrogate_keys required');
        if (keys.length > 256) return fail(400, 'Up to 256 surrogate keys per request');
        return undefined;
      }
      if (/^\/purge\/[^/:]+\/.*/.test(s.path)) return undefined;
      return fail(404, 'Not found');
    },
    (s) =>
      s.path.startsWith('/purge/')
        ? { status: 'ok', id: '108-1391560174-974124' }
        : Object.fromEntries(
            ((s.body as { surrogate_keys: string[] }).surrogate_keys ?? []).map((k) => [
              k,
              '108-1',
            ]),
          ),
  );
}

const tags = (n: number) => Array.from({ length: n }, (_, i) => `tag-${i}`);
const event = (e: Partial<PurgeEvent>): PurgeEvent => ({
  paths: [],
  tags: [],
  mode: 'expire',
  ...e,
});

describe('cloudflarePurge', () => {
  const purger = (url: string, extra = {}) =>
    cloudflarePurge({
      zoneId: ZONE,
      token: CF_TOKEN,
      apiUrl: `${url}/client/v4`,
      backoff: 5,
      ...extra,
    });

  test('expire: purge_cache by the path keys then the tags, 30 a call; pages by URL for each origin', async () => {
    const api = await cloudflareApi();
    const purge = purger(api.url, {
      origins: ['https://www.example.com', 'http://example.com:8080'],
    });
    await purge(event({ tags: [...tags(65), 'post café'], paths: ['/blog/café'] }));
    expect(
      api.seen.map((s) => [
        s.path,
        Object.keys(s.body as object)[0],
        Object.values(s.body as object)[0].length,
      ]),
    ).toEqual([
      [`/client/v4/zones/${ZONE}/purge_cache`, 'tags', 30],
      [`/client/v4/zones/${ZONE}/purge_cache`, 'tags', 30],
      [`/client/v4/zones/${ZONE}/purge_cache`, 'tags', 7],
      [`/client/v4/zones/${ZONE}/purge_cache`, 'files', 2],
    ]);
    // The page's key first, named and encoded as its Cache-Tag header carries it.
    expect((api.seen[0].body as { tags: string[] }).tags[0]).toBe('page:/blog/caf%25c3%25a9');
    // Tags as the Cache-Tag header carries them (percent-encoded), pages as visitors' URLs.
    expect((api.seen[2].body as { tags: string[] }).tags.at(-1)).toBe('post%20caf%C3%A9');
    expect(api.seen[3].body).toEqual({
      files: ['https://www.example.com/blog/caf%C3%A9', 'http://example.com:8080/blog/caf%C3%A9'],
    });
  });

  test('stale: invalidate_cache (Cloudflare marks stale and revalidates), or purge_cache with invalidate: false', async () => {
    const api = await cloudflareApi();
    await purger(api.url)(event({ tags: ['posts'], mode: 'stale' }));
    await purger(api.url, { invalidate: false })(event({ tags: ['posts'], mode: 'stale' }));
    await purger(api.url)(event({ tags: ['posts'], mode: 'regenerate' }));
    expect(api.seen.map((s) => s.path.split('/').at(-1))).toEqual([
      'invalidate_cache',
      'purge_cache',
      'purge_cache',
    ]);
  });

  test('layouts by their layout key, and by prefix (host and path, no scheme) with origins', async () => {
    const api = await cloudflareApi();
    await purger(api.url, { origins: ['https://www.example.com'] })(
      event({ paths: ['/blog'], type: 'layout' }),
    );
    expect(api.seen.map((s) => s.body)).toEqual([
      { tags: ['layout:/blog'] },
      { prefixes: ['www.example.com/blog'] },
    ]);
  });

  test('retries a 5xx and a 429 (Retry-After) with backoff, then succeeds', async () => {
    const api = await cloudflareApi();
    api.script.push({ status: 503 }, { status: 429, headers: { 'retry-after': '0' } });
    await purger(api.url)(event({ tags: ['posts'] }));
    expect(api.seen.map((s) => s.path.split('/').at(-1))).toHaveLength(3);
  });

  test('a refusal (wrong token, success: false) is not retried; every batch is still tried; one PurgeError names the failures', async () => {
    const api = await cloudflareApi();
    const wrong = cloudflarePurge({
      zoneId: ZONE,
      token: 'nope',
      apiUrl: `${api.url}/client/v4`,
      backoff: 5,
    });
    const error = await wrong(event({ tags: tags(40) })).catch((e: unknown) => e);
    expect(error).toMatchObject({
      name: 'PurgeError',
      cdn: 'Cloudflare',
      failures: [
        {
          status: 403,
          attempts: 1,
          target: expect.stringMatching(/^purge_cache tags tag-0 tag-1 tag-2 \(\+27\)$/),
        },
        { status: 403, attempts: 1 },
      ],
    });
    expect(api.seen).toHaveLength(2);
    // A 2xx whose envelope says success: false is a failure too.
    api.script.push({
      status: 200,
      body: JSON.stringify({ success: false, errors: [{ message: 'quota' }] }),
    });
    await expect(purger(api.url)(event({ tags: ['posts'] }))).rejects.toMatchObject({
      failures: [{ status: 200, reason: 'refused: quota' }],
    });
  });

  test('paths without origins: purged by their path keys alone, with the tags', async () => {
    const api = await cloudflareApi();
    await purger(api.url)(
      event({ tags: ['posts'], paths: ['/blog/a', '/Blog/a/', '/blog/b?page=2'] }),
    );
    // Spellings and query variants of one page share its key: sent once.
    expect(api.seen.map((s) => s.body)).toEqual([
      { tags: ['page:/blog/a', 'page:/blog/b', 'posts'] },
    ]);
  });

  test('options are checked when the purger is made', () => {
    expect(() => cloudflarePurge({ zoneId: '', token: 't' })).toThrow(/zoneId is required/);
    expect(() => cloudflarePurge({ zoneId: 'z', token: 't', batchSize: 501 })).toThrow(/batchSize/);
    expect(() =>
      cloudflarePurge({ zoneId: 'z', token: 't', origins: ['www.example.com'] }),
    ).toThrow(/origins/);
  });
});

describe('fastlyPurge', () => {
  const purger = (url: string, extra = {}) =>
    fastlyPurge({ serviceId: SERVICE, token: FASTLY_TOKEN, apiUrl: url, backoff: 5, ...extra });

  test('stale: a soft batch purge of 256 keys a call, then each page by URL, soft', async () => {
    const api = await fastlyApi();
    await purger(api.url, { origins: ['https://www.example.com'] })(
      event({ tags: tags(300), paths: ['/blog/a', '/blog/b'], mode: 'stale' }),
    );
    expect(
      api.seen.map((s) => [
        s.path,
        s.headers['fastly-soft-purge'],
        (s.body as { surrogate_keys?: string[] })?.surrogate_keys?.length,
      ]),
    ).toEqual([
      [`/service/${SERVICE}/purge`, '1', 256],
      [`/service/${SERVICE}/purge`, '1', 46],
      ['/purge/www.example.com/blog/a', '1', undefined],
      ['/purge/www.example.com/blog/b', '1', undefined],
    ]);
  });

  test('expire and regenerate: hard purges (no Fastly-Soft-Purge)', async () => {
    const api = await fastlyApi();
    await purger(api.url)(event({ tags: ['posts'], mode: 'expire' }));
    await purger(api.url)(event({ tags: ['posts'], mode: 'regenerate' }));
    expect(api.seen.map((s) => s.headers['fastly-soft-purge'])).toEqual([undefined, undefined]);
  });

  test('through the cache: regenerate purges once the re-render is done', async () => {
    const api = await fastlyApi();
    const recorder = errorRecorder();
    const cache = isr({
      cdnTags: 'Surrogate-Key',
      onRevalidate: purger(api.url),
      onError: recorder.onError,
      logger: recorder.logger,
    });
    cleanups.push(() => cache.close());
    const rendered: number[] = [];
    const app = express();
    app.use(cache);
    app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
    app.get('/p', (_req: Request, res: Response) => {
      res.isr({ tags: ['posts'] });
      setTimeout(() => {
        rendered.push(Date.now());
        res.send(`<h1>${rendered.length}</h1>`);
      }, 50);
    });
    const server = await listen(app);
    cleanups.push(server.close);
    expect((await server.get('/p')).headers['surrogate-key']).toBe(
      'page:/p layout:/ layout:/p posts',
    );
    await cache.idle();
    const before = rendered.length;
    await cache.revalidateTag('posts', { mode: 'regenerate' });
    await cache.idle();
    expect(rendered.length).toBeGreaterThan(before);
    expect(api.seen).toHaveLength(1);
    expect(api.seen[0].at).toBeGreaterThanOrEqual(rendered.at(-1) as number);
    expect(recorder.errors).toEqual([]);
  });

  test('a purge that keeps failing reaches the cache onError (phase on-revalidate), the webhook still answers 200', async () => {
    const api = await fastlyApi();
    api.script.push({ status: 500 }, { status: 502 }, { status: 503 });
    const recorder = errorRecorder();
    const cache = isr({
      onRevalidate: purger(api.url, { attempts: 3 }),
      onError: recorder.onError,
      logger: recorder.logger,
    });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
    const server = await listen(app);
    cleanups.push(server.close);
    const answer = await server.get(`/api/revalidate?secret=${SECRET}&tag=posts`, {}, 'POST');
    expect(answer.status).toBe(200);
    await cache.idle();
    expect(api.seen).toHaveLength(3);
    expect(recorder.errors).toEqual([
      {
        error: expect.objectContaining({
          name: 'PurgeError',
          message: expect.stringContaining('Fastly purge: 1 request failed'),
          failures: [expect.objectContaining({ status: 503, attempts: 3 })],
        }),
        context: { phase: 'on-revalidate' },
      },
    ]);
  });
});

/**
 * Purges by path through the cache: the keys a path revalidation purges are the very strings
 * the pages' tag header carries — for a page reached with a query string and for everything
 * below a layout — in a form each CDN takes (Cloudflare: printable ASCII without spaces, 1024
 * characters a tag at most; Fastly: space-separated, 1024 bytes a key, 16 KB a header).
 */
describe.each([
  ['Cloudflare', 'Cache-Tag', 'cache-tag', ','] as const,
  ['Fastly', 'Surrogate-Key', 'surrogate-key', ' '] as const,
])('purge by path through the cache (%s)', (cdn, option, header, separator) => {
  async function site() {
    const api = cdn === 'Cloudflare' ? await cloudflareApi() : await fastlyApi();
    const purged = () =>
      api.seen.flatMap((s) => {
        const body = s.body as { tags?: string[]; surrogate_keys?: string[] };
        return body?.tags ?? body?.surrogate_keys ?? [];
      });
    const recorder = errorRecorder();
    const cache = isr({
      cdnTags: option,
      onRevalidate:
        cdn === 'Cloudflare'
          ? cloudflarePurge({ zoneId: ZONE, token: CF_TOKEN, apiUrl: `${api.url}/client/v4` })
          : fastlyPurge({ serviceId: SERVICE, token: FASTLY_TOKEN, apiUrl: api.url }),
      onError: recorder.onError,
      logger: recorder.logger,
    });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/blog/{*rest}', (req: Request, res: Response) => {
      res.isr({ tags: ['posts', 'a tag with spaces'] });
      res.send(`<h1>${req.path}</h1>`);
    });
    const server = await listen(app);
    cleanups.push(server.close);
    const keysOf = async (url: string) => {
      const answer = await server.get(url);
      expect(answer.status).toBe(200);
      const value = String(answer.headers[header]);
      expect(Buffer.byteLength(value)).toBeLessThanOrEqual(16 * 1024);
      const keys = value.split(separator);
      for (const key of keys) {
        expect(key).toMatch(/^[\x21-\x7e]+$/); // printable ASCII, no spaces
        expect(Buffer.byteLength(key)).toBeLessThanOrEqual(1024);
      }
      return keys;
    };
    return { api, purged, cache, recorder, keysOf };
  }

  test('a page with query variants: revalidatePath purges the page key every variant carries', async () => {
    const s = await site();
    const variants = await Promise.all(['/blog/a?page=2', '/Blog/a/?utm_source=x'].map(s.keysOf));
    await s.cache.idle();
    await s.cache.revalidatePath('/blog/a', { mode: 'expire' });
    await s.cache.idle();
    expect(s.purged()).toEqual(['page:/blog/a']);
    for (const keys of variants) expect(keys).toContain('page:/blog/a');
    expect(variants[0]).toEqual([
      'page:/blog/a',
      'layout:/',
      'layout:/blog',
      'layout:/blog/a',
      'posts',
      'a%20tag%20with%20spaces',
    ]);
    expect(s.recorder.errors).toEqual([]);
  });

  test("revalidatePath('/blog', { type: 'layout' }) purges the layout key every page below carries", async () => {
    const s = await site();
    const deep = await s.keysOf('/blog/2026/a-post');
    const other = await s.keysOf('/blog/b');
    await s.cache.idle();
    await s.cache.revalidatePath('/blog', { type: 'layout', mode: 'stale' });
    await s.cache.idle();
    expect(s.purged()).toEqual(['layout:/blog']);
    expect(deep).toContain('layout:/blog');
    expect(other).toContain('layout:/blog');
    // Soft where the CDN has it, as for tags.
    if (cdn === 'Fastly') expect(s.api.seen[0].headers['fastly-soft-purge']).toBe('1');
    else expect(s.api.seen[0].path).toMatch(/invalidate_cache$/);
    expect(s.recorder.errors).toEqual([]);
  });
});
