/**
 * One page, many spellings. Express 5's default routing serves `/blog/a` for `/BLOG/a`,
 * `/blog/a/` and the absolute-form `GET http://host/blog/a`, and a CMS may name a page
 * decoded (`/blog/café`) or encoded in either hex case. The cache keeps a copy per spelling a
 * visitor used (each is its own key, the absolute form excepted: it is `/blog/a`), and one
 * revalidation of the page must reach every copy, through the methods and the webhook alike.
 */
import express from 'express';
import { isr, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { listen } from '../helpers/http';
import { fakeClock } from '../helpers/time';

const SECRET = 'Spellings-Webhook-Secret-0123456789';
const ENDPOINT = '/api/revalidate';

const cleanups = cleanupsAfterEach();

async function site() {
  const recorder = errorRecorder();
  const cache = isr({ now: fakeClock().now, onError: recorder.onError, logger: recorder.logger });
  const app = express();
  const renders: Record<string, number> = {};
  app.use(cache);
  app.use(ENDPOINT, revalidateRouter(cache, { secret: SECRET }));
  app.get('/blog/:slug', (req, res) => {
    const slug = String(req.params.slug).toLowerCase();
    renders[slug] = (renders[slug] ?? 0) + 1;
    res.send(`<p>${slug} render ${renders[slug]}</p>`);
  });
  app.get('/blogger', (_req, res) => {
    renders.blogger = (renders.blogger ?? 0) + 1;
    res.send('<p>blogger</p>');
  });
  const server = await listen(app);
  cleanups.push(() => cache.close());
  cleanups.push(() => server.close());
  const state = async (path: string) => {
    const answer = await server.get(path);
    expect({ path, status: answer.status }).toEqual({ path, status: 200 });
    await cache.idle();
    return answer.headers['x-isr-cache'];
  };
  const webhook = (body: unknown) =>
    server.send({
      method: 'POST',
      path: ENDPOINT,
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  return { cache, server, renders, state, webhook };
}

type Site = Awaited<ReturnType<typeof site>>;

/** Visits each spelling until it is a HIT (stored under its own key, or shared). */
async function warm(s: Site, spellings: string[]) {
  for (const path of spellings) {
    await s.state(path);
    expect({ path, state: await s.state(path) }).toEqual({ path, state: 'HIT' });
  }
}

/** The next visit of each spelling, in order. */
async function next(s: Site, spellings: string[]) {
  const found: Record<string, unknown> = {};
  for (const path of spellings) found[path] = await s.state(path);
  return found;
}

describe('a path given decoded or encoded reaches the same page (express 5)', () => {
  test.each(['/blog/café', '/blog/caf%C3%A9', '/blog/caf%c3%a9'])(
    'the webhook with {"path": "%s"} makes /blog/caf%%C3%%A9 STALE',
    async (given) => {
      const s = await site();
      await warm(s, ['/blog/caf%C3%A9', '/blog/caf%c3%a9']);
      expect(s.renders.café).toBe(1);
      const answer = await s.webhook({ path: given });
      expect(answer.status).toBe(200);
      expect(JSON.parse(answer.body)).toMatchObject({ revalidated: true, paths: [given] });
      expect(await s.state('/blog/caf%C3%A9')).toBe('STALE');
      expect(await s.state('/blog/caf%C3%A9')).toBe('HIT');
      expect(s.renders.café).toBe(2);
    },
  );

  test.each(['/blog/café', '/blog/caf%c3%a9'])(
    "revalidatePath('%s') and revalidate({ paths }) reach the page",
    async (given) => {
      const s = await site();
      await warm(s, ['/blog/caf%C3%A9']);
      await s.cache.revalidatePath(given);
      expect(await s.state('/blog/caf%C3%A9')).toBe('STALE');
      expect(await s.state('/blog/caf%C3%A9')).toBe('HIT');
      await s.cache.revalidate({ paths: [given], mode: 'expire' });
      expect(await s.state('/blog/caf%C3%A9')).toBe('MISS');
      expect(s.renders.café).toBe(3);
    },
  );
});

describe('every spelling Express serves a page under is revalidated with it (express 5)', () => {
  const spellings = (port: number) => [
    '/blog/a',
    '/BLOG/a',
    '/Blog/A',
    '/blog/a/',
    '/BLOG/A/',
    `http://127.0.0.1:${port}/blog/a`,
    `http://127.0.0.1:${port}/BLOG/a/`,
  ];

  test("mode: 'expire' on /blog/a: no spelling is served from the cache afterwards", async () => {
    const s = await site();
    const all = spellings(s.server.port);
    await warm(s, [...all, '/blogger', '/blog/b']);
    // The absolute form is keyed by its path: no key carries a scheme or a host.
    const { entries } = await s.cache.entries({ prefix: '/', limit: 100 });
    expect(entries.map((entry) => entry.key).sort()).toEqual(
      ['/BLOG/A/', '/BLOG/a', '/BLOG/a/', '/Blog/A', '/blog/a', '/blog/a/', '/blog/b', '/blogger']
        .slice()
        .sort(),
    );
    const before = s.renders.a;
    await s.cache.revalidatePath('/blog/a', { mode: 'expire' });
    const states = await next(s, all);
    expect(states).toEqual(Object.fromEntries(all.map((path) => [path, expect.any(String)])));
    for (const path of all.slice(0, 6)) {
      // Each key is rendered anew on its first visit; the absolute forms share /blog/a and
      // /BLOG/a/, rendered just before them.
      expect({ path, state: states[path] }).toEqual({
        path,
        state: path.startsWith('http') ? 'HIT' : 'MISS',
      });
    }
    expect(s.renders.a).toBe(before + 6);
    expect(await next(s, ['/blogger', '/blog/b'])).toEqual({ '/blogger': 'HIT', '/blog/b': 'HIT' });
  });

  test('the absolute form alone: expired with /blog/a, never served from the cache after', async () => {
    const s = await site();
    const absolute = `http://127.0.0.1:${s.server.port}/blog/a`;
    await warm(s, [absolute]);
    await s.cache.revalidatePath('/blog/a', { mode: 'expire' });
    expect(await s.state(absolute)).toBe('MISS');
    expect(s.renders.a).toBe(2);
  });

  test("revalidatePath('/BLOG/a/') marks /blog/a and its spellings STALE (mode: 'stale')", async () => {
    const s = await site();
    const all = ['/blog/a', '/Blog/A', '/blog/a/'];
    await warm(s, all);
    await s.cache.revalidatePath('/BLOG/a/');
    expect(await next(s, all)).toEqual({
      '/blog/a': 'STALE',
      '/Blog/A': 'STALE',
      '/blog/a/': 'STALE',
    });
  });

  test("type: 'layout' on /Blog covers every spelling below it, not /blogger", async () => {
    const s = await site();
    // The absolute form first: it shares /blog/a's key, so /blog/a itself is not listed.
    const below = [
      `http://127.0.0.1:${s.server.port}/blog/a`,
      '/BLOG/a',
      '/Blog/A',
      '/blog/a/',
      '/BLOG/A/',
      '/blog/b',
      '/BLOG/b/',
    ];
    await warm(s, [...below, '/blogger']);
    await s.cache.revalidatePath('/Blog', { type: 'layout', mode: 'expire' });
    expect(await next(s, [...below, '/blogger'])).toEqual({
      ...Object.fromEntries(below.map((path) => [path, 'MISS'])),
      '/blogger': 'HIT',
    });
  });

  test('the webhook with {"path": "/BLOG/a/", "mode": "expire"} reaches /blog/a too', async () => {
    const s = await site();
    await warm(s, ['/blog/a', '/blog/a/']);
    const answer = await s.webhook({ path: '/BLOG/a/', mode: 'expire' });
    expect(answer.status).toBe(200);
    expect(await next(s, ['/blog/a', '/blog/a/'])).toEqual({
      '/blog/a': 'MISS',
      '/blog/a/': 'MISS',
    });
  });
});
