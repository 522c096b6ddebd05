/**
 * The cache key: path plus query string with its parameters sorted
 * (repeated names keep their order), tracking parameters left out (and out of what the render
 * sees), the `ignoreQuery` / `allowQuery` / `key` options, percent-encoding normalised
 * (RFC 3986 §6.2.2) without ever letting two different URLs collide, fragments ignored.
 * Also unit tests of `canonicalUrl` and `queryFilter` from lib/request/cache-key.ts.
 */
import type { RequestListener } from 'node:http';
import type { Express } from 'express';
import request from 'supertest';
import { type IsrOptions, isr } from '../../lib';
import { canonicalUrl, type QueryFilter, queryFilter } from '../../lib/request/cache-key';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { rawRequest } from '../helpers/http';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

describe.each(expressVersions)('cache key (%s)', (_name, createApp) => {
  function setup(options: IsrOptions = {}) {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, ...options });
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (req, res) => {
      renders += 1;
      res.send(
        `<pre>${JSON.stringify({ render: renders, query: req.query, url: req.originalUrl, rawUrl: req.url })}</pre>`,
      );
    });
    return { app, cache, clock, renders: () => renders };
  }

  function seen(html: string): {
    render: number;
    query: Record<string, unknown>;
    url: string;
    rawUrl: string;
  } {
    return JSON.parse(html.replace(/^<pre>|<\/pre>$/g, ''));
  }

  describe('query string', () => {
    test('?b=2&a=1 and ?a=1&b=2 share one entry', async () => {
      const { app, cache, renders } = setup();
      const first = await request(app).get('/page?b=2&a=1');
      expect(first.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      const second = await request(app).get('/page?a=1&b=2');
      expect(second.headers['x-isr-cache']).toBe('HIT');
      expect(second.text).toBe(first.text);
      expect(renders()).toBe(1);
    });

    test('repeated names keep their order: ?t=b&t=a and ?t=a&t=b are different pages', async () => {
      const { app, cache, renders } = setup();
      const ba = await request(app).get('/page?t=b&t=a');
      expect(ba.headers['x-isr-cache']).toBe('MISS');
      expect(seen(ba.text).query.t).toEqual(['b', 'a']);
      await cache.idle();
      const ab = await request(app).get('/page?t=a&t=b');
      expect(ab.headers['x-isr-cache']).toBe('MISS');
      expect(seen(ab.text).query.t).toEqual(['a', 'b']);
      await cache.idle();

      const baAgain = await request(app).get('/page?t=b&t=a');
      expect(baAgain.headers['x-isr-cache']).toBe('HIT');
      expect(baAgain.text).toBe(ba.text);
      const abAgain = await request(app).get('/page?t=a&t=b');
      expect(abAgain.headers['x-isr-cache']).toBe('HIT');
      expect(abAgain.text).toBe(ab.text);
      expect(renders()).toBe(2);
    });

    test('utm_*, fbclid, gclid and msclkid are ignored by default, and the render does not see them', async () => {
      const { app, cache, renders } = setup();
      const first = await request(app).get('/page?utm_source=news&a=1&fbclid=abc');
      expect(first.headers['x-isr-cache']).toBe('MISS');
      const render = seen(first.text);
      expect(render.query).toEqual({ a: '1' });
      expect(render.url).toBe('/page?a=1');
      expect(first.text).not.toMatch(/utm_source|fbclid|news|abc/);
      await cache.idle();

      for (const url of [
        '/page?a=1',
        '/page?a=1&utm_medium=mail&gclid=x',
        '/page?msclkid=y&a=1&utm_campaign=z',
      ]) {
        const again = await request(app).get(url);
        expect(again.headers['x-isr-cache']).toBe('HIT');
        expect(again.text).toBe(first.text);
      }
      expect(renders()).toBe(1);
    });

    test('ignoreQuery: listed parameters are left out of the key and out of the render', async () => {
      const { app, cache, renders } = setup({ ignoreQuery: ['ref', 'session_*'] });
      const first = await request(app).get('/page?ref=twitter&session_id=9&a=1');
      expect(first.headers['x-isr-cache']).toBe('MISS');
      expect(seen(first.text).query).toEqual({ a: '1' });
      await cache.idle();
      const second = await request(app).get('/page?a=1&ref=mastodon');
      expect(second.headers['x-isr-cache']).toBe('HIT');
      const other = await request(app).get('/page?a=2&ref=twitter');
      expect(other.headers['x-isr-cache']).toBe('MISS');
      expect(renders()).toBe(2);
    });

    test('allowQuery: only listed parameters are part of the key and seen by the render', async () => {
      const { app, cache, renders } = setup({ allowQuery: ['page'] });
      const first = await request(app).get('/page?page=2&sort=asc');
      expect(first.headers['x-isr-cache']).toBe('MISS');
      expect(seen(first.text).query).toEqual({ page: '2' });
      expect(first.text).not.toContain('sort');
      await cache.idle();
      const sameKey = await request(app).get('/page?sort=desc&page=2&x=1');
      expect(sameKey.headers['x-isr-cache']).toBe('HIT');
      expect(sameKey.text).toBe(first.text);
      const otherPage = await request(app).get('/page?page=3&sort=asc');
      expect(otherPage.headers['x-isr-cache']).toBe('MISS');
      expect(seen(otherPage.text).query).toEqual({ page: '3' });
      expect(renders()).toBe(2);
    });
  });

  test('a custom key(req, url) separates entries (one per tenant header)', async () => {
    const clock = fakeClock();
    const cache = isr({
      now: clock.now,
      forwardHeaders: ['accept', 'accept-language', 'x-tenant'],
      key: (req, url) => `${req.headers['x-tenant'] ?? '-'} ${url}`,
    });
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/home', (req, res) => {
      renders += 1;
      res.send(`<h1>home of ${req.headers['x-tenant']}</h1>`);
    });

    const a = await request(app).get('/home').set('X-Tenant', 'acme');
    expect(a.headers['x-isr-cache']).toBe('MISS');
    expect(a.text).toBe('<h1>home of acme</h1>');
    await cache.idle();
    const b = await request(app).get('/home').set('X-Tenant', 'globex');
    expect(b.headers['x-isr-cache']).toBe('MISS');
    expect(b.text).toBe('<h1>home of globex</h1>');
    await cache.idle();

    const aAgain = await request(app).get('/home').set('X-Tenant', 'acme');
    expect(aAgain.headers['x-isr-cache']).toBe('HIT');
    expect(aAgain.text).toBe('<h1>home of acme</h1>');
    const bAgain = await request(app).get('/home').set('X-Tenant', 'globex');
    expect(bAgain.headers['x-isr-cache']).toBe('HIT');
    expect(bAgain.text).toBe('<h1>home of globex</h1>');
    expect(renders).toBe(2);
  });

  describe('path', () => {
    function routes() {
      const clock = fakeClock();
      const cache = isr({ now: clock.now });
      cleanups.push(() => cache.close());
      const app: Express = createApp();
      const renders: Record<string, number> = {};
      const count = (name: string) => {
        renders[name] = (renders[name] ?? 0) + 1;
      };
      app.use(cache);
      app.get('/blog', (_req, res) => {
        count('blog');
        res.send(`<h1>blog ${renders.blog}</h1>`);
      });
      app.get('/files/:name', (req, res) => {
        count('file');
        res.send(`<h1>file ${req.params.name}</h1>`);
      });
      app.get('/a/b', (_req, res) => {
        count('a/b');
        res.send('<h1>nested a/b</h1>');
      });
      app.get('/:one', (req, res) => {
        count('one');
        res.send(`<h1>one segment ${req.params.one}</h1>`);
      });
      return { app, cache, renders };
    }

    test('/%62log is /blog: one entry', async () => {
      const { app, cache, renders } = routes();
      const canonical = await request(app).get('/blog');
      expect(canonical.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      for (const spelling of ['/%62log', '/bl%6Fg', '/%62%6c%6f%67']) {
        const encoded = await request(app).get(spelling);
        expect(encoded.status).toBe(200);
        expect(encoded.headers['x-isr-cache']).toBe('HIT');
        expect(encoded.text).toBe('<h1>blog 1</h1>');
      }
      expect(renders.blog).toBe(1);
    });

    test('%2f and %2F share one entry', async () => {
      const { app, cache, renders } = routes();
      const lower = await request(app).get('/files/a%2fb');
      expect(lower.headers['x-isr-cache']).toBe('MISS');
      expect(lower.text).toBe('<h1>file a/b</h1>');
      await cache.idle();
      const upper = await request(app).get('/files/a%2Fb');
      expect(upper.headers['x-isr-cache']).toBe('HIT');
      expect(upper.text).toBe('<h1>file a/b</h1>');
      expect(renders.file).toBe(1);
    });

    test('/a%2Fb does not collide with /a/b', async () => {
      const { app, cache, renders } = routes();
      const nested = await request(app).get('/a/b');
      expect(nested.headers['x-isr-cache']).toBe('MISS');
      expect(nested.text).toBe('<h1>nested a/b</h1>');
      await cache.idle();
      const encoded = await request(app).get('/a%2Fb');
      expect(encoded.headers['x-isr-cache']).toBe('MISS');
      expect(encoded.text).toBe('<h1>one segment a/b</h1>');
      await cache.idle();
      expect((await request(app).get('/a/b')).text).toBe('<h1>nested a/b</h1>');
      expect((await request(app).get('/a%2Fb')).text).toBe('<h1>one segment a/b</h1>');
      expect(renders['a/b']).toBe(1);
      expect(renders.one).toBe(1);
    });

    test('/a/b and /ab never collide', async () => {
      const { app, cache, renders } = routes();
      const ab = await request(app).get('/ab');
      expect(ab.headers['x-isr-cache']).toBe('MISS');
      expect(ab.text).toBe('<h1>one segment ab</h1>');
      await cache.idle();
      const nested = await request(app).get('/a/b');
      expect(nested.headers['x-isr-cache']).toBe('MISS');
      expect(nested.text).toBe('<h1>nested a/b</h1>');
      await cache.idle();
      const abAgain = await request(app).get('/ab');
      expect(abAgain.headers['x-isr-cache']).toBe('HIT');
      expect(abAgain.text).toBe('<h1>one segment ab</h1>');
      expect(renders['a/b']).toBe(1);
      expect(renders.one).toBe(1);
    });

    test('/blog and /blog/ are separate entries', async () => {
      const { app, cache, renders } = routes();
      const bare = await request(app).get('/blog');
      expect(bare.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
      const slash = await request(app).get('/blog/');
      expect(slash.headers['x-isr-cache']).toBe('MISS');
      expect(slash.text).toBe('<h1>blog 2</h1>');
      await cache.idle();
      expect((await request(app).get('/blog')).text).toBe('<h1>blog 1</h1>');
      expect((await request(app).get('/blog/')).text).toBe('<h1>blog 2</h1>');
      expect(renders.blog).toBe(2);
    });
  });

  test('a fragment sent on the wire is ignored', async () => {
    const { app, cache, renders } = setup();
    // Sent verbatim, fragment included (supertest would strip it).
    const first = await rawRequest(app as unknown as RequestListener, '/page?a=1#section');
    expect(first.status).toBe(200);
    expect(first.headers['x-isr-cache']).toBe('MISS');
    expect(first.body.toString()).not.toContain('section');
    await cache.idle();
    const plain = await request(app).get('/page?a=1');
    expect(plain.headers['x-isr-cache']).toBe('HIT');
    const other = await rawRequest(app as unknown as RequestListener, '/page?a=1#other');
    expect(other.headers['x-isr-cache']).toBe('HIT');
    expect(other.body.toString()).toBe(first.body.toString());
    expect(renders()).toBe(1);
  });
});

describe('canonicalUrl', () => {
  const all: QueryFilter = () => true;
  const url = (raw: string, keep = all) => canonicalUrl(raw, keep).url;

  test('keeps a plain path as it is', () => {
    expect(canonicalUrl('/blog/hello', all)).toEqual({ path: '/blog/hello', url: '/blog/hello' });
    expect(url('/')).toBe('/');
  });

  test('decodes percent-encoded unreserved characters', () => {
    expect(url('/%62log')).toBe('/blog');
    expect(url('/%7Euser/%2D%2E%5F')).toBe('/~user/-._');
    expect(url('/%41%5a%30%39')).toBe('/AZ09');
  });

  test('keeps reserved and non-ASCII percent-encodings, upper-cased', () => {
    expect(url('/a%2fb')).toBe('/a%2Fb');
    expect(url('/a%2Fb')).toBe('/a%2Fb');
    expect(url('/caf%c3%a9')).toBe('/caf%C3%A9');
    expect(url('/a%3fb')).toBe('/a%3Fb');
    expect(url('/a%2Fb')).not.toBe(url('/a/b'));
  });

  test('never makes two different paths one', () => {
    const paths = ['/a/b', '/ab', '/a%2Fb', '/a%252Fb', '/blog', '/blog/', '/a/b/', '/a//b'];
    const urls = paths.map((p) => url(p));
    expect(new Set(urls).size).toBe(paths.length);
  });

  test('sorts parameters by name, stably', () => {
    expect(url('/p?b=2&a=1')).toBe('/p?a=1&b=2');
    expect(url('/p?t=b&a=1&t=a')).toBe('/p?a=1&t=b&t=a');
    expect(url('/p?t=a&t=b')).not.toBe(url('/p?t=b&t=a'));
  });

  test('normalises percent-encoding in the query, without decoding delimiters', () => {
    expect(url('/p?%61=%31')).toBe('/p?a=1');
    expect(url('/p?q=a%2fb')).toBe('/p?q=a%2Fb');
    expect(url('/p?a=1%26b%3D2')).not.toBe(url('/p?a=1&b=2'));
  });

  test('drops empty parameters and a bare question mark', () => {
    expect(url('/p?')).toBe('/p');
    expect(url('/p?&&a=1&')).toBe('/p?a=1');
  });

  test('ignores the fragment', () => {
    expect(canonicalUrl('/p?a=1#top', all)).toEqual({ path: '/p', url: '/p?a=1' });
    expect(canonicalUrl('/p#top?a=1', all)).toEqual({ path: '/p', url: '/p' });
  });

  test('filters parameters with the given filter, by decoded name', () => {
    const keep = queryFilter(['utm_*', 'fbclid'], undefined);
    expect(url('/p?utm_source=x&a=1&fbclid=y', keep)).toBe('/p?a=1');
    expect(url('/p?utm%5Fsource=x&a=1', keep)).toBe('/p?a=1');
    expect(canonicalUrl('/p?utm_source=x', keep)).toEqual({ path: '/p', url: '/p' });
  });
});

describe('queryFilter', () => {
  test('the default ignore list drops tracking parameters and keeps the rest', () => {
    const keep = queryFilter(['utm_*', 'fbclid', 'gclid', 'msclkid'], undefined);
    for (const name of ['utm_source', 'utm_medium', 'utm_', 'fbclid', 'gclid', 'msclkid']) {
      expect(keep(name)).toBe(false);
    }
    for (const name of ['a', 'page', 'fbclid2', 'xutm_source', 'utm']) {
      expect(keep(name)).toBe(true);
    }
  });

  test('an allow list keeps only the names it lists (prefixes with *)', () => {
    const keep = queryFilter([], ['page', 'filter_*']);
    expect(keep('page')).toBe(true);
    expect(keep('filter_color')).toBe(true);
    expect(keep('sort')).toBe(false);
    expect(keep('pages')).toBe(false);
  });
});
