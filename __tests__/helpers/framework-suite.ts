/**
 * What every SSR framework example must show with isr() in front of it, over real HTTP
 * against the example's real build: a page's life (MISS, HIT, STALE, the new content), the
 * webhook by tag, a streamed page stored whole, the framework's assets and a personalised page
 * passed through, and the example started as its README says. The clock is the app's `now`,
 * moved by the test: no test waits for a window to pass.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { cleanupsAfterEach } from './cleanups';
import {
  BUILD_TIMEOUT,
  buildExample,
  EXAMPLES,
  type ExampleApp,
  editPosts,
  get,
  getOnceStored,
  revalidate,
  runExampleAsDocumented,
  startExampleApp,
} from './example-app';

export interface FrameworkExample {
  /** The folder under examples/. */
  name: string;
  /** The framework's CLI in node_modules/.bin and its arguments, run from the repo's root. */
  build: [bin: string, args: string[]];
  /** Where the build puts the files the browser loads, relative to the example. */
  clientDir: string;
}

// React puts a comment between a text and an expression (`render #<!-- -->1`); Astro does not.
const renderNumber = (html: string) => /render #(?:<!-- -->)?(\d+)/.exec(html)?.[1];
const greeting = (html: string) => /Hello, (?:<!-- -->)?(\w+)/.exec(html)?.[1];

export function frameworkSuite(example: FrameworkExample) {
  const cleanups = cleanupsAfterEach();

  beforeAll(async () => {
    await buildExample(...example.build);
  }, BUILD_TIMEOUT);

  async function start(): Promise<ExampleApp> {
    const app = await startExampleApp(example.name);
    cleanups.push(app.stop);
    return app;
  }

  test('a page: MISS, HIT, STALE past its window, then the new content', async () => {
    const app = await start();
    const miss = await get(app.url('/'));
    expect(miss.status).toBe(200);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toContain('Hello, ISR');
    // The page's path keys, then its tags (README, "Purging a CDN in front").
    expect(miss.headers['cache-tag']).toBe('page:/,layout:/,posts');
    expect(miss.headers['cache-control']).toMatch(/s-maxage=/);
    const first = renderNumber(miss.text);
    await app.idle();

    const hit = await get(app.url('/'));
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.body.equals(miss.body)).toBe(true);
    // Only `user` makes a request personal: an analytics cookie still gets the stored page.
    const withCookie = await get(app.url('/'), { cookie: '_ga=GA1.1.123' });
    expect(withCookie.headers['x-isr-cache']).toBe('HIT');

    editPosts(app.postsFile, (posts) => {
      posts[0].title = 'Hello again, ISR';
    });
    await app.advance(59);
    expect((await get(app.url('/'))).text).toContain('Hello, ISR');

    await app.advance(2);
    const stale = await get(app.url('/'));
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.body.equals(miss.body)).toBe(true);
    await app.idle();

    const fresh = await get(app.url('/'));
    expect(fresh.headers['x-isr-cache']).toBe('HIT');
    expect(fresh.text).toContain('Hello again, ISR');
    expect(renderNumber(fresh.text)).not.toBe(first);
  });

  test('the webhook by tag refreshes the page at once', async () => {
    const app = await start();
    expect((await get(app.url('/'))).headers['x-isr-cache']).toBe('MISS');
    await app.idle();
    expect((await get(app.url('/'))).headers['x-isr-cache']).toBe('HIT');

    editPosts(app.postsFile, (posts) => {
      posts[0].title = 'Published by the CMS';
    });
    const hook = await revalidate(app, { tag: 'posts' });
    expect(hook.status).toBe(200);
    expect(JSON.parse(hook.text)).toMatchObject({ revalidated: true, tags: ['posts'] });

    const stale = await get(app.url('/'));
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toContain('Hello, ISR');
    await app.idle();
    const fresh = await get(app.url('/'));
    expect(fresh.headers['x-isr-cache']).toBe('HIT');
    expect(fresh.text).toContain('Published by the CMS');
  });

  test('a streamed page reaches its first visitor as it streams, and is replayed byte for byte', async () => {
    const app = await start();
    const miss = await get(app.url('/streamed'));
    expect(miss.status).toBe(200);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    // The part that waits (300 ms) came after the rest of the page, in the same response.
    expect(miss.chunks.length).toBeGreaterThan(1);
    expect(miss.chunks[0].toString()).not.toContain('A comment on');
    expect(miss.text).toContain('A comment on Hello, ISR');
    await app.idle();

    const hit = await get(app.url('/streamed'));
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.body.equals(miss.body)).toBe(true);
    expect(hit.headers['content-length']).toBe(String(miss.body.length));
    expect(await app.storedUrls()).toEqual(['/streamed']);
  });

  test("the framework's JS and CSS pass through untouched and are not stored", async () => {
    const app = await start();
    const page = await get(app.url('/'));
    const assets = [...page.text.matchAll(/(?:href|src)="(\/[^"]+\.(?:js|css))"/g)].map(
      (match) => match[1],
    );
    expect(assets.some((asset) => asset.endsWith('.js'))).toBe(true);
    expect(assets.some((asset) => asset.endsWith('.css'))).toBe(true);
    await app.idle();

    for (const asset of assets) {
      const onDisk = readFileSync(path.join(EXAMPLES, example.name, example.clientDir, asset));
      for (const _visit of [1, 2]) {
        const response = await get(app.url(asset));
        expect(response.status).toBe(200);
        expect(response.body.equals(onDisk)).toBe(true);
        expect(response.headers['content-type']).toMatch(/^(text|application)\/(javascript|css)/);
        // express.static's own headers, not the cache's.
        expect(response.headers['cache-control']).toBe('public, max-age=31536000, immutable');
        expect(response.headers['x-isr-cache']).toBe('BYPASS');
      }
    }
    expect(await app.storedUrls()).toEqual(['/']);
  });

  test('the personalised page is never cached nor shared', async () => {
    const app = await start();
    for (const user of ['ada', 'grace', 'ada']) {
      const response = await get(app.url('/account'), { cookie: `_ga=1; user=${user}` });
      expect(response.headers['x-isr-cache']).toBe('BYPASS');
      expect(greeting(response.text)).toBe(user);
    }
    for (const cookie of [undefined, '_ga=1', undefined]) {
      const response = await get(app.url('/account'), cookie ? { cookie } : {});
      expect(response.headers['x-isr-cache']).toBe('BYPASS');
      expect(response.headers['cache-control']).toBe('private, no-cache');
      expect(greeting(response.text)).toBe('guest');
    }
    await app.idle();
    expect(await app.storedUrls()).toEqual([]);
  });

  test('the example runs with the command its README gives: MISS, then HIT', async () => {
    const readme = readFileSync(path.join(EXAMPLES, example.name, 'README.md'), 'utf8');
    expect(readme).toContain(`node examples/${example.name}/server.mjs`);
    const server = await runExampleAsDocumented(example.name);
    cleanups.push(server.stop);
    expect((await get(server.url('/'))).headers['x-isr-cache']).toBe('MISS');
    expect((await getOnceStored(server.url('/'))).headers['x-isr-cache']).toBe('HIT');
  });
}
