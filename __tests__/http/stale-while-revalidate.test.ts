// Stale-while-revalidate: past its window a page is replayed at once (STALE) while exactly one
// background regeneration re-runs the app for a synthetic anonymous request; once it is done
// the next request is a HIT with the new page. Covers every way a route can answer
// (send, write+end, render, sendFile), sub-apps, and that a client cannot pose as a
// regeneration.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import express5, { type Express, type Request, type Response } from 'express';
import request from 'supertest';
import { isRegeneration, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { deferred } from '../helpers/deferred';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

// The second copy of Express, installed under its alias (see helpers/express.ts).
const express4 = require('express4') as typeof express5;

/** An express.Router of the same major as the app under test. */
function routerOf(version: string) {
  return version === 'express 5' ? express5.Router() : express4.Router();
}

describe.each(expressVersions)('stale-while-revalidate (%s)', (_name, createApp) => {
  test('past the window the old page is served at once (STALE) while one regeneration runs; then the new page is a HIT', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    cleanups.push(() => cache.close());
    const app = createApp();
    const secondRenderMayFinish = deferred();
    const secondRenderStarted = deferred();
    let renders = 0;
    let regenerationFinished = false;
    app.use(cache);
    app.get('/page', async (_req, res) => {
      renders += 1;
      const version = renders;
      if (version > 1) {
        secondRenderStarted.resolve();
        await secondRenderMayFinish.promise;
        regenerationFinished = true;
      }
      res.send(`<h1>version ${version}</h1>`);
    });

    const miss = await request(app).get('/page');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toBe('<h1>version 1</h1>');
    await cache.idle();

    clock.advanceSeconds(11);
    const stale = await request(app).get('/page');
    // The response came back while the regeneration is still waiting: nobody waited for it.
    expect(regenerationFinished).toBe(false);
    expect(stale.status).toBe(200);
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>version 1</h1>');
    await secondRenderStarted.promise;
    expect(renders).toBe(2);

    // Still regenerating: more visitors get the old page and start no second regeneration.
    const again = await request(app).get('/page');
    expect(again.headers['x-isr-cache']).toBe('STALE');
    expect(again.text).toBe('<h1>version 1</h1>');
    expect(renders).toBe(2);

    secondRenderMayFinish.resolve();
    await cache.idle();
    expect(regenerationFinished).toBe(true);

    const hit = await request(app).get('/page');
    expect(hit.status).toBe(200);
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>version 2</h1>');
    expect(renders).toBe(2);
  });

  test('a page within its window is a HIT and runs nothing', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    cleanups.push(() => cache.close());
    const app = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.send(`<h1>version ${renders}</h1>`);
    });
    await request(app).get('/page');
    await cache.idle();
    clock.advanceSeconds(9);
    const hit = await request(app).get('/page');
    await cache.idle();
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(renders).toBe(1);
  });

  test('an entry with revalidate: false never goes stale by time', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    cleanups.push(() => cache.close());
    const app = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/forever', (_req, res) => {
      renders += 1;
      res.isr({ revalidate: false });
      res.send(`<h1>version ${renders}</h1>`);
    });
    await request(app).get('/forever');
    await cache.idle();

    clock.advanceSeconds(10 * 365 * 24 * 3600);
    const later = await request(app).get('/forever');
    await cache.idle();
    expect(later.headers['x-isr-cache']).toBe('HIT');
    expect(later.text).toBe('<h1>version 1</h1>');
    expect(renders).toBe(1);
  });

  test('the global revalidate: false keeps pages until revalidated on demand', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: false });
    cleanups.push(() => cache.close());
    const app = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.send(`<h1>version ${renders}</h1>`);
    });
    await request(app).get('/page');
    await cache.idle();
    clock.advanceSeconds(400 * 24 * 3600);
    const later = await request(app).get('/page');
    await cache.idle();
    expect(later.headers['x-isr-cache']).toBe('HIT');
    expect(renders).toBe(1);
  });
});

describe.each(expressVersions)(
  'regeneration is anonymous and unspoofable (%s)',
  (_name, createApp) => {
    interface Seen {
      cookie: string | undefined;
      authorization: string | undefined;
      regeneration: boolean;
    }

    function setup() {
      const clock = fakeClock();
      const cache = isr({ now: clock.now, revalidate: 10 });
      cleanups.push(() => cache.close());
      const app = createApp();
      const seen: Seen[] = [];
      app.use(cache);
      app.get('/page', (req, res) => {
        seen.push({
          cookie: req.headers.cookie,
          authorization: req.headers.authorization,
          regeneration: isRegeneration(req),
        });
        res.send(`<h1>version ${seen.length}</h1>`);
      });
      return { app, cache, clock, seen };
    }

    test('the regeneration sees no Cookie and no Authorization, even when the request that triggered it had a cookie', async () => {
      const { app, cache, clock, seen } = setup();
      await request(app).get('/page').set('Cookie', 'sid=first-visitor');
      await cache.idle();
      clock.advanceSeconds(11);
      // The page reads cookies: a visitor with one gets their own render, and the stale page
      // is regenerated in the background all the same.
      const stale = await request(app).get('/page').set('Cookie', 'sid=secret-session');
      expect(stale.headers['x-isr-cache']).toBe('BYPASS');
      await cache.idle();

      const own = seen.filter((s) => !s.regeneration);
      expect(own.map((s) => s.cookie)).toEqual(['sid=first-visitor', 'sid=secret-session']);
      const shared = seen.filter((s) => s.regeneration);
      expect(shared).toHaveLength(2); // the page rendered apart on the MISS, then regenerated
      for (const render of shared) {
        expect(render).toEqual({ cookie: undefined, authorization: undefined, regeneration: true });
      }
      const hit = await request(app).get('/page');
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.text).toBe(`<h1>version ${seen.indexOf(shared[1]) + 1}</h1>`);
    });

    test('isRegeneration(req) is false for a real request and true inside the renders the cache makes', async () => {
      const { app, cache, clock, seen } = setup();
      await request(app).get('/page'); // MISS: the page is rendered on a request of the cache's own
      await cache.idle();
      clock.advanceSeconds(11);
      await request(app).get('/page'); // STALE: regenerated
      await cache.idle();
      await request(app).get('/page').set('Authorization', 'Bearer x'); // BYPASS: the visitor's own
      expect(seen.map((s) => s.regeneration)).toEqual([true, true, false]);
    });

    const spoofHeaders: Record<string, string> = {
      'x-isr-regeneration': '1',
      'x-isr-regenerate': 'true',
      'x-isr-cache': 'BYPASS',
      'x-isr-bypass': '1',
      'x-express-isr': 'regeneration',
      'express-isr.regeneration': 'true',
      'x-prerender-revalidate': '1',
      'cache-control': 'no-cache, no-store, max-age=0',
      pragma: 'no-cache',
    };

    test('no request header makes a real request look like a regeneration or skip the cache on a cold page', async () => {
      const { app, cache, seen } = setup();
      const first = await request(app).get('/page').set(spoofHeaders);
      expect(first.headers['x-isr-cache']).toBe('MISS');
      expect(seen).toHaveLength(1);
      await cache.idle();

      const next = await request(app).get('/page');
      expect(next.headers['x-isr-cache']).toBe('HIT');
      expect(next.text).toBe('<h1>version 1</h1>');
      expect(seen).toHaveLength(1);

      // A visitor's own request (here BYPASS) that carries them is still a visitor's request.
      await request(app).get('/page').set(spoofHeaders).set('Authorization', 'Bearer x');
      expect(seen).toHaveLength(2);
      expect(seen[1].regeneration).toBe(false);
    });

    test('no request header makes a client skip a fresh page or force a regeneration', async () => {
      const { app, cache, clock, seen } = setup();
      await request(app).get('/page');
      await cache.idle();

      clock.advanceSeconds(5);
      const spoofed = await request(app).get('/page').set(spoofHeaders);
      await cache.idle();
      expect(spoofed.status).toBe(200);
      expect(spoofed.headers['x-isr-cache']).toBe('HIT');
      expect(spoofed.text).toBe('<h1>version 1</h1>');
      expect(seen).toHaveLength(1);
    });
  },
);

/** A page whose content changes on every render, produced one particular way. */
interface RouteKind {
  name: string;
  mount(app: Express, nextVersion: () => number): void;
}

/** The ways a route can answer; views and files live in `dir`. */
function routeKinds(dir: string): RouteKind[] {
  return [
    {
      name: 'res.send',
      mount(app, nextVersion) {
        app.get('/page', (_req, res) => {
          res.send(`<h1>version ${nextVersion()}</h1>`);
        });
      },
    },
    {
      name: 'res.write + res.end streaming',
      mount(app, nextVersion) {
        app.get('/page', (_req, res) => {
          const version = nextVersion();
          res.type('html');
          res.write('<h1>version ');
          setTimeout(() => {
            res.write(String(version));
            setTimeout(() => res.end('</h1>'), 5);
          }, 5);
        });
      },
    },
    {
      name: 'res.render with a view engine',
      mount(app, nextVersion) {
        writeFileSync(path.join(dir, 'page.tpl'), '<h1>version {{version}}</h1>');
        app.engine(
          'tpl',
          (file: string, options: object, callback: (e: unknown, s?: string) => void) => {
            readFile(file, 'utf8').then(
              (text) =>
                callback(
                  null,
                  text.replace(/\{\{(\w+)\}\}/g, (_m, name: string) =>
                    String((options as Record<string, unknown>)[name]),
                  ),
                ),
              callback,
            );
          },
        );
        app.set('views', dir);
        app.set('view engine', 'tpl');
        app.get('/page', (_req: Request, res: Response) => {
          res.render('page', { version: nextVersion() });
        });
      },
    },
    {
      name: 'res.sendFile',
      mount(app, nextVersion) {
        const file = path.join(dir, 'page.html');
        app.get('/page', (_req, res, next) => {
          // The file's content changes between renders, as a build step would change it.
          writeFileSync(file, `<h1>version ${nextVersion()}</h1>`);
          res.sendFile(file, (err) => {
            if (err) next(err);
          });
        });
      },
    },
  ];
}

describe.each(expressVersions)('regeneration with every kind of route (%s)', (_name, createApp) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'express-isr-swr-'));
  const kinds = routeKinds(dir);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test.each(kinds.map((k) => [k.name, k] as const))(
    'a route using %s is regenerated and replaced',
    async (_kind, kind) => {
      const clock = fakeClock();
      const cache = isr({ now: clock.now, revalidate: 10 });
      cleanups.push(() => cache.close());
      const app = createApp();
      let renders = 0;
      app.use(cache);
      kind.mount(app, () => {
        renders += 1;
        return renders;
      });

      const miss = await request(app).get('/page');
      expect(miss.status).toBe(200);
      expect(miss.headers['x-isr-cache']).toBe('MISS');
      expect(miss.text).toBe('<h1>version 1</h1>');
      await cache.idle();

      clock.advanceSeconds(11);
      const stale = await request(app).get('/page');
      expect(stale.headers['x-isr-cache']).toBe('STALE');
      expect(stale.text).toBe('<h1>version 1</h1>');
      await cache.idle();
      expect(renders).toBe(2);

      const hit = await request(app).get('/page');
      expect(hit.status).toBe(200);
      expect(hit.headers['x-isr-cache']).toBe('HIT');
      expect(hit.headers['content-type']).toMatch(/^text\/html/);
      expect(hit.text).toBe('<h1>version 2</h1>');
      expect(renders).toBe(2);
    },
  );
});

describe.each(expressVersions)('regeneration inside a mounted sub-app (%s)', (_name, createApp) => {
  function mountedBlog(factory: ExpressFactory) {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    cleanups.push(() => cache.close());
    const parent = factory();
    const child = factory();
    let renders = 0;
    const regenerations: string[] = [];
    child.use(cache);
    child.get('/hello', (req, res) => {
      renders += 1;
      if (isRegeneration(req)) regenerations.push(req.originalUrl);
      res.send(`<h1>hello, version ${renders}</h1>`);
    });
    parent.use('/blog', child);
    return { parent, cache, clock, renders: () => renders, regenerations };
  }

  test('isr() mounted in a sub-app under /blog regenerates /blog/hello', async () => {
    const { parent, cache, clock, renders, regenerations } = mountedBlog(createApp);
    const miss = await request(parent).get('/blog/hello');
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    expect(miss.text).toBe('<h1>hello, version 1</h1>');
    await cache.idle();

    clock.advanceSeconds(11);
    const stale = await request(parent).get('/blog/hello');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>hello, version 1</h1>');
    await cache.idle();
    expect(renders()).toBe(2);
    // The MISS's shared render, then the regeneration: both dispatched with the full URL.
    expect(regenerations).toEqual(['/blog/hello', '/blog/hello']);

    const hit = await request(parent).get('/blog/hello');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>hello, version 2</h1>');
  });

  test('isr() in an express.Router mounted under /blog regenerates /blog/hello', async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    cleanups.push(() => cache.close());
    const app = createApp();
    const router = routerOf(_name);
    let renders = 0;
    router.use(cache);
    router.get('/hello', (_req: Request, res: Response) => {
      renders += 1;
      res.send(`<h1>hello, version ${renders}</h1>`);
    });
    app.use('/blog', router);

    await request(app).get('/blog/hello');
    await cache.idle();
    clock.advanceSeconds(11);
    const stale = await request(app).get('/blog/hello');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    expect(renders).toBe(2);
    const hit = await request(app).get('/blog/hello');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>hello, version 2</h1>');
  });
});
