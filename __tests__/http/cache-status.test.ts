/**
 * What responses tell caches and CDNs in front: the RFC 9211
 * `Cache-Status` header beside `x-isr-cache` for HIT (with the seconds of freshness left),
 * STALE, MISS (stored; `collapsed` when it waited for another request's render) and BYPASS
 * (with the reason), switchable off; the page's tags in `Cache-Tag` or `Surrogate-Key`
 * (never on a BYPASS), switchable off; and the `onRevalidate` hook for CDN purges, whose
 * failures are reported without failing the revalidation.
 */
import type { Request, Response } from 'express';
import request from 'supertest';
import { type IsrOptions, revalidateRouter } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { type ExpressFactory, expressVersions } from '../helpers/express';
import { arrivals, listen } from '../helpers/http';
import { recordedCache } from '../helpers/site';
import { sleep, waitFor } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

const SECRET = 'a-webhook-secret-long-enough-1234';

describe.each(expressVersions)(
  'Cache-Status and CDN tags (%s)',
  (_name, createApp: ExpressFactory) => {
    /**
     * `/page`, `/tagged` (tags a, b), `/forever` (revalidate false), `/cookie` (tagged, sets a
     * cookie), `/slow` (waits until `slowArrivals` requests reached the app), POST `/tagged`,
     * and the webhook at `/api/revalidate`.
     */
    function setup(options: IsrOptions = {}, slowArrivals = 1) {
      const { clock, recorder, cache } = recordedCache(options);
      cleanups.push(() => cache.close());
      const app = createApp();
      const gate = arrivals(slowArrivals);
      app.use(gate.middleware);
      app.use(cache);
      app.get('/page', (_req: Request, res: Response) => {
        res.send('<h1>page</h1>');
      });
      app.get('/tagged', (_req: Request, res: Response) => {
        res.isr({ tags: ['a'] });
        res.isr({ tags: ['b'] });
        res.send('<h1>tagged</h1>');
      });
      app.get('/forever', (_req: Request, res: Response) => {
        res.isr({ revalidate: false });
        res.send('<h1>forever</h1>');
      });
      app.get('/cookie', (_req: Request, res: Response) => {
        res.isr({ tags: ['a', 'b'] });
        res.cookie('session', 'abc');
        res.send('<h1>personal</h1>');
      });
      app.get('/slow', async (_req: Request, res: Response) => {
        await gate.allArrived;
        await sleep(30);
        res.send('<h1>slow</h1>');
      });
      app.post('/tagged', (_req: Request, res: Response) => {
        res.send('saved');
      });
      app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
      return { app, cache, clock, recorder };
    }

    describe('Cache-Status', () => {
      test('MISS: express-isr; fwd=uri-miss; stored', async () => {
        const { app } = setup();
        const res = await request(app).get('/page');
        expect(res.headers['x-isr-cache']).toBe('MISS');
        expect(res.headers['cache-status']).toBe('express-isr; fwd=uri-miss; stored');
      });

      test('HIT: express-isr; hit; ttl=<seconds of freshness left>', async () => {
        const { app, cache, clock } = setup({ revalidate: 60 });
        await request(app).get('/page');
        await cache.idle();
        clock.advanceSeconds(20);
        const res = await request(app).get('/page');
        expect(res.headers['x-isr-cache']).toBe('HIT');
        expect(res.headers['cache-status']).toBe('express-isr; hit; ttl=40');
      });

      test('HIT of a page with revalidate: false: express-isr; hit, without ttl', async () => {
        const { app, cache, clock } = setup();
        await request(app).get('/forever');
        await cache.idle();
        clock.advanceSeconds(3600);
        const res = await request(app).get('/forever');
        expect(res.headers['x-isr-cache']).toBe('HIT');
        expect(res.headers['cache-status']).toBe('express-isr; hit');
      });

      test('STALE: express-isr; fwd=stale', async () => {
        const { app, cache, clock } = setup({ revalidate: 60 });
        await request(app).get('/page');
        await cache.idle();
        clock.advanceSeconds(61);
        const res = await request(app).get('/page');
        expect(res.headers['x-isr-cache']).toBe('STALE');
        expect(res.headers['cache-status']).toBe('express-isr; fwd=stale');
      });

      test('a request that waited for another request’s render says collapsed', async () => {
        const { app, cache } = setup({}, 3);
        const server = await listen(app);
        try {
          const statuses = await Promise.all(
            [1, 2, 3].map(async () => {
              const res = await fetch(server.url('/slow'));
              await res.text();
              return {
                state: res.headers.get('x-isr-cache'),
                cacheStatus: res.headers.get('cache-status') ?? '',
              };
            }),
          );
          expect(statuses.map((s) => s.state)).toEqual(['MISS', 'MISS', 'MISS']);
          const collapsed = statuses.filter((s) => /;\s*collapsed\b/.test(s.cacheStatus));
          const leader = statuses.filter((s) => !/collapsed/.test(s.cacheStatus));
          expect(collapsed).toHaveLength(2);
          for (const s of collapsed)
            expect(s.cacheStatus).toBe('express-isr; fwd=uri-miss; stored; collapsed');
          expect(leader.map((s) => s.cacheStatus)).toEqual(['express-isr; fwd=uri-miss; stored']);
        } finally {
          await server.close();
          await cache.close();
        }
      });

      test('BYPASS: express-isr; fwd=bypass; detail="<the reason>"', async () => {
        const { app } = setup();
        const post = await request(app).post('/tagged');
        expect(post.headers['x-isr-cache']).toBe('BYPASS');
        expect(post.headers['cache-status']).toBe('express-isr; fwd=bypass; detail="method POST"');

        const auth = await request(app).get('/page').set('Authorization', 'Bearer user');
        expect(auth.headers['x-isr-cache']).toBe('BYPASS');
        expect(auth.headers['cache-status']).toBe(
          'express-isr; fwd=bypass; detail="authorization"',
        );

        const cookie = await request(app).get('/cookie');
        expect(cookie.headers['x-isr-cache']).toBe('BYPASS');
        expect(cookie.headers['cache-status']).toBe('express-isr; fwd=bypass; detail="set-cookie"');
      });

      test('cacheStatus: false sends no Cache-Status; x-isr-cache stays', async () => {
        const { app, cache, clock } = setup({ cacheStatus: false, revalidate: 60 });
        const states: string[] = [];
        const check = (res: request.Response) => {
          states.push(res.headers['x-isr-cache']);
          expect(res.headers['cache-status']).toBeUndefined();
        };
        check(await request(app).get('/page'));
        await cache.idle();
        check(await request(app).get('/page'));
        clock.advanceSeconds(61);
        check(await request(app).get('/page'));
        await cache.idle();
        check(await request(app).get('/cookie'));
        check(await request(app).post('/tagged'));
        expect(states).toEqual(['MISS', 'HIT', 'STALE', 'BYPASS', 'BYPASS']);
      });
    });

    describe('CDN tags', () => {
      // Every page carries its path keys first (README, "Purging a CDN in front"), then its tags.
      const KEYS = 'page:/tagged,layout:/,layout:/tagged';
      test('Cache-Tag: the path keys, a,b on the MISS, the HIT and the STALE of a tagged page', async () => {
        const { app, cache, clock } = setup({ revalidate: 60 });
        const miss = await request(app).get('/tagged');
        expect(miss.headers['x-isr-cache']).toBe('MISS');
        expect(miss.headers['cache-tag']).toBe(`${KEYS},a,b`);
        await cache.idle();
        const hit = await request(app).get('/tagged');
        expect(hit.headers['x-isr-cache']).toBe('HIT');
        expect(hit.headers['cache-tag']).toBe(`${KEYS},a,b`);
        clock.advanceSeconds(61);
        const stale = await request(app).get('/tagged');
        expect(stale.headers['x-isr-cache']).toBe('STALE');
        expect(stale.headers['cache-tag']).toBe(`${KEYS},a,b`);
        expect(hit.headers['surrogate-key']).toBeUndefined();
        // An untagged page carries its path keys alone.
        expect((await request(app).get('/page')).headers['cache-tag']).toBe(
          'page:/page,layout:/,layout:/page',
        );
      });

      test("cdnTags: 'Surrogate-Key' sends Surrogate-Key: the path keys, a b instead", async () => {
        const { app, cache } = setup({ cdnTags: 'Surrogate-Key' });
        const miss = await request(app).get('/tagged');
        expect(miss.headers['surrogate-key']).toBe('page:/tagged layout:/ layout:/tagged a b');
        expect(miss.headers['cache-tag']).toBeUndefined();
        await cache.idle();
        const hit = await request(app).get('/tagged');
        expect(hit.headers['x-isr-cache']).toBe('HIT');
        expect(hit.headers['surrogate-key']).toBe('page:/tagged layout:/ layout:/tagged a b');
        expect(hit.headers['cache-tag']).toBeUndefined();
      });

      test('cdnTags: false sends neither header', async () => {
        const { app, cache } = setup({ cdnTags: false });
        const miss = await request(app).get('/tagged');
        await cache.idle();
        const hit = await request(app).get('/tagged');
        expect([miss.headers['x-isr-cache'], hit.headers['x-isr-cache']]).toEqual(['MISS', 'HIT']);
        for (const res of [miss, hit]) {
          expect(res.headers['cache-tag']).toBeUndefined();
          expect(res.headers['surrogate-key']).toBeUndefined();
        }
      });

      test('BYPASS responses carry no tags (request- and response-level)', async () => {
        const { app } = setup();
        const auth = await request(app).get('/tagged').set('Authorization', 'Bearer user');
        const cookie = await request(app).get('/cookie');
        for (const res of [auth, cookie]) {
          expect(res.headers['x-isr-cache']).toBe('BYPASS');
          expect(res.headers['cache-tag']).toBeUndefined();
          expect(res.headers['surrogate-key']).toBeUndefined();
        }
      });
    });

    describe('onRevalidate', () => {
      test('receives { paths, tags, mode, type } for the methods, the webhook and a successful POST', async () => {
        const calls: unknown[] = [];
        const { app, cache } = setup({
          onRevalidate: (event) => {
            calls.push(event);
          },
        });
        await cache.revalidatePath('/tagged');
        await cache.revalidatePath('/blog', { type: 'layout' });
        await cache.revalidateTag('a', { mode: 'expire' });
        await cache.revalidate({ paths: ['/x'], tags: ['y'], mode: 'regenerate' });
        await cache.idle();
        expect(calls).toEqual([
          { paths: ['/tagged'], tags: [], mode: 'stale', type: 'page' },
          { paths: ['/blog'], tags: [], mode: 'stale', type: 'layout' },
          { paths: [], tags: ['a'], mode: 'expire', type: 'page' },
          { paths: ['/x'], tags: ['y'], mode: 'regenerate', type: 'page' },
        ]);

        const hook = await request(app)
          .post('/api/revalidate')
          .set('Authorization', `Bearer ${SECRET}`)
          .send({ paths: ['/tagged', '/page'], tags: ['a', 'b'] });
        expect(hook.status).toBe(200);
        await cache.idle();
        expect(calls.slice(4)).toEqual([
          { paths: ['/tagged', '/page'], tags: ['a', 'b'], mode: 'stale', type: 'page' },
        ]);

        await request(app).get('/tagged'); // a POST invalidates a page that is stored
        await cache.idle();
        expect((await request(app).post('/tagged')).status).toBe(200);
        await waitFor("the POST's invalidation reported", () => calls.length >= 6, 2000);
        await cache.idle();
        expect(calls.slice(5)).toEqual([
          { paths: ['/tagged'], tags: [], mode: 'stale', type: 'page' },
        ]);
      });

      test('a hook that throws is reported (phase on-revalidate); the revalidation still happens', async () => {
        const { app, cache, clock, recorder } = setup({
          onRevalidate: () => {
            throw new Error('CDN purge refused');
          },
        });
        await request(app).get('/tagged');
        await cache.idle();
        clock.advanceSeconds(1);
        await expect(cache.revalidatePath('/tagged')).resolves.toBeUndefined();
        await cache.idle();
        expect((await request(app).get('/tagged')).headers['x-isr-cache']).toBe('STALE');
        await cache.idle();
        expect(recorder.errors).toHaveLength(1);
        expect(recorder.errors[0].error.message).toBe('CDN purge refused');
        expect(recorder.errors[0].context.phase).toBe('on-revalidate');
      });

      test('a hook that rejects is reported; the webhook still answers 200 and the page is stale', async () => {
        const { app, cache, clock, recorder } = setup({
          onRevalidate: async () => {
            await sleep(1);
            throw new Error('CDN is down');
          },
        });
        await request(app).get('/tagged');
        await cache.idle();
        clock.advanceSeconds(1);
        const hook = await request(app)
          .post('/api/revalidate')
          .set('Authorization', `Bearer ${SECRET}`)
          .send({ tags: ['a'] });
        expect(hook.status).toBe(200);
        expect(hook.body).toMatchObject({ revalidated: true, tags: ['a'] });
        await cache.idle();
        expect((await request(app).get('/tagged')).headers['x-isr-cache']).toBe('STALE');
        await cache.idle();
        expect(recorder.errors.map((e) => [e.context.phase, e.error.message])).toEqual([
          ['on-revalidate', 'CDN is down'],
        ]);
      });
    });
  },
);
