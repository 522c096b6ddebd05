// The README's "Try it" walkthrough, command by command, against the demo blog started as a
// real process (`node --import tsx demo-app/server.ts`, memory store): prerendered pages are
// HITs from the start; a post is a MISS then a HIT; past its window it is STALE, then a HIT
// with a new generation time; a change published by tag through the webhook is live within a
// second; an unpublished post is a 404 and gone from the listing; the admin is behind the
// secret and never cached.
import { readFileSync } from 'node:fs';
import {
  type DemoProcess,
  editPostsFile,
  getPage,
  pollPage,
  startDemoProcess,
} from '../helpers/demo-process';
import { sleep } from '../helpers/time';

const REVALIDATE_S = 2;
jest.setTimeout(30_000);

let demo: DemoProcess;
beforeAll(async () => {
  demo = await startDemoProcess({ REVALIDATE: String(REVALIDATE_S) });
});
afterAll(async () => {
  await demo?.stop();
});

const basic = (password: string) => `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
const postLinks = (html: string) => html.match(/<li><a href="\/blog\/[^"]+"/g) ?? [];

describe('npm run demo: the README walkthrough', () => {
  test('start-up prerenders the home page, /about and the newest posts: their first visitor gets a HIT', async () => {
    const paths = demo.prerendered.map((p) => p.path);
    expect(paths).toEqual(expect.arrayContaining(['/', '/about']));
    const posts = paths.filter((p) => p.startsWith('/blog/'));
    expect(posts).toHaveLength(3);
    expect(demo.prerendered.every((p) => p.outcome === 'stored')).toBe(true);

    const home = await getPage(`${demo.url}/`);
    expect(home.status).toBe(200);
    expect(home.state).toBe('HIT');
    expect(postLinks(home.body)).toHaveLength(12); // seeded with a dozen posts
    const newest = await getPage(`${demo.url}${posts[0]}`);
    expect(newest.state).toBe('HIT');
  });

  test('curl a post twice: MISS (rendered now), then HIT (the same page from the cache)', async () => {
    expect(demo.prerendered.map((p) => p.path)).not.toContain('/blog/hello');
    const first = await getPage(`${demo.url}/blog/hello`);
    expect(first.status).toBe(200);
    expect(first.state).toBe('MISS');
    expect(first.title).toBe('Hello, ISR');
    // The footer's badge reads these (server-timing.ts): the state, the process, and how long
    // the response took, here including the render (no age: nothing was replayed).
    expect(first.headers.get('server-timing')).toMatch(
      /^isr;desc="MISS", pid;desc="\d+", total;dur=\d+\.\d$/,
    );

    // The second curl, a moment later: the page is in the store once its br/gzip variants
    // are made (a few ms after the MISS); a request in between is answered from the same
    // render and also labelled MISS, so the test gives it up to a second, as a user would.
    const second = await pollPage(`${demo.url}/blog/hello`, (p) => p.state !== 'MISS', 1000);
    expect(second.state).toBe('HIT');
    expect(second.headers.get('server-timing')).toMatch(
      /^isr;desc="HIT", pid;desc="\d+", age;desc="\d+", total;dur=\d+\.\d$/,
    );
    expect(second.generatedAt).toBe(first.generatedAt);
    expect(second.body).toBe(first.body);
  });

  test('past the window: STALE (the old page at once), then HIT with a new generation time', async () => {
    const cached = await getPage(`${demo.url}/blog/hello`);
    expect(cached.generatedAt).toBeDefined();
    await sleep(cached.generatedAt! + REVALIDATE_S * 1000 + 100 - Date.now());

    const stale = await getPage(`${demo.url}/blog/hello`);
    expect(stale.state).toBe('STALE');
    expect(stale.generatedAt).toBe(cached.generatedAt);

    const fresh = await pollPage(`${demo.url}/blog/hello`, (p) => p.state === 'HIT', 2000);
    expect(fresh.state).toBe('HIT');
    expect(fresh.generatedAt).toBeGreaterThan(cached.generatedAt!);
  });

  test('a change in the CMS stays invisible until the webhook is called by tag; then it is live within a second', async () => {
    editPostsFile(demo.postsFile, (posts) => {
      posts.find((p) => p.slug === 'hello')!.title = 'Hello again, ISR';
    });
    const before = await getPage(`${demo.url}/blog/hello`);
    expect(before.state).toBe('HIT');
    expect(before.title).toBe('Hello, ISR'); // the cache does not know yet

    const response = await fetch(`${demo.url}/api/revalidate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${demo.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tag: 'post-hello', mode: 'regenerate' }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      revalidated: true,
      paths: [],
      tags: ['post-hello'],
      mode: 'regenerate',
      // The post and the home page (which lists it): both cached, both re-rendered.
      regenerated: 2,
      failed: 0,
      pending: 0,
      now: expect.any(Number),
    });

    // Half a second later, well within the page's own window (2 s): the first visitor already
    // gets the new page, from the cache. (With mode "stale" they would get the old one, STALE.)
    await sleep(500);
    const live = await getPage(`${demo.url}/blog/hello`);
    expect(live.title).toBe('Hello again, ISR');
    expect(live.state).toBe('HIT');
    expect(live.generatedAt).toBeGreaterThan(before.generatedAt!);
    // Every page showing the post carries its tag: the home page was re-rendered too.
    const home = await getPage(`${demo.url}/`);
    expect(home.state).toBe('HIT');
    expect(home.body).toContain('>Hello again, ISR</a>');
  });

  test('unpublish in the admin (mode expire): the post is a 404 at once and gone from the listing', async () => {
    const response = await fetch(`${demo.url}/admin/posts/hello/unpublish`, {
      method: 'POST',
      headers: { authorization: basic(demo.secret) },
      redirect: 'manual',
    });
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/admin/?done=unpublished&slug=hello&hook=ok');

    const post = await getPage(`${demo.url}/blog/hello`);
    expect(post.status).toBe(404);
    const home = await getPage(`${demo.url}/`);
    expect(home.status).toBe(200);
    expect(home.body).not.toContain('/blog/hello"');
    expect(postLinks(home.body)).toHaveLength(11);
    const stored = JSON.parse(readFileSync(demo.postsFile, 'utf8'));
    expect(stored.posts.find((p: { slug: string }) => p.slug === 'hello').published).toBe(false);
    expect(demo.output()).toMatch(/admin: unpublished hello; webhook .*"mode":"expire"/);
  });

  test('the admin wants the secret (HTTP Basic) and is never cached', async () => {
    const bare = await getPage(`${demo.url}/admin`);
    expect(bare.status).toBe(301);
    expect(bare.headers.get('location')).toBe('/admin/');

    const anonymous = await getPage(`${demo.url}/admin/`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
    const wrong = await getPage(`${demo.url}/admin/`, {
      headers: { authorization: basic('not-the-secret') },
    });
    expect(wrong.status).toBe(401);

    for (let i = 0; i < 2; i++) {
      const admin = await getPage(`${demo.url}/admin/`, {
        headers: { authorization: basic(demo.secret) },
      });
      expect(admin.status).toBe(200);
      expect(admin.state).toBe('BYPASS');
      expect(admin.headers.get('cache-control')).toBe('no-store');
      expect(admin.body).toContain('href="/admin/posts/redis"');
    }
  });

  test('the admin refuses a form posted from another site', async () => {
    const response = await fetch(`${demo.url}/admin/posts/redis/unpublish`, {
      method: 'POST',
      headers: { authorization: basic(demo.secret), origin: 'https://evil.example' },
      redirect: 'manual',
    });
    expect(response.status).toBe(403);
    expect((await getPage(`${demo.url}/blog/redis`)).status).toBe(200);
  });
});
