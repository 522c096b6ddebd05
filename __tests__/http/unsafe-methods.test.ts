/**
 * What a client can make the cache do with requests other than GET and HEAD (README, "How it
 * behaves"): only a successful POST, PUT, PATCH or DELETE marks its page stale (OPTIONS is
 * safe, RFC 9110 §9.2.1, and Express answers it on every routed path); a path with no page
 * stored costs nothing; and however many arrive, a page is invalidated at most once a second.
 */
import type { Express, Request, Response } from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { type IsrMiddleware, isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { fakeClock, waitFor } from '../helpers/time';

const cleanups = cleanupsAfterEach();

function revalidations(cache: IsrMiddleware): string[] {
  const seen: string[] = [];
  cache.on('revalidate', (event) => {
    seen.push(`${event.source} ${event.paths.join(',')}`);
  });
  return seen;
}

describe.each(expressVersions)('unsafe methods (%s)', (_name, createApp) => {
  function setup(store?: Keyv) {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, ...(store ? { store } : {}) });
    cleanups.push(() => cache.close());
    const app: Express = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (_req: Request, res: Response) => {
      renders += 1;
      res.send(`<p>render ${renders}</p>`);
    });
    app.post('/:any', (_req: Request, res: Response) => {
      res.send('ok');
    });
    return { app, cache, clock, renders: () => renders };
  }

  test('OPTIONS, which Express answers on every routed path, does not mark a page stale', async () => {
    const { app, cache } = setup();
    const seen = revalidations(cache);
    await request(app).get('/page');
    await cache.idle();
    const options = await request(app).options('/page');
    expect(options.status).toBe(200);
    await new Promise((resolve) => setImmediate(resolve));
    const after = await request(app).get('/page');
    expect(after.headers['x-isr-cache']).toBe('HIT');
    expect(seen).toEqual([]);
  });

  test('POSTs to paths with no page stored write nothing to the store', async () => {
    const keyv = new Keyv({ namespace: `isr-unsafe-${process.pid}-${Date.now()}` });
    const { app, cache } = setup(keyv);
    const seen = revalidations(cache);
    for (let i = 0; i < 200; i += 1) {
      expect((await request(app).post(`/nothing-${i}`)).status).toBe(200);
    }
    await new Promise((resolve) => setImmediate(resolve));
    await cache.idle();
    expect(seen).toEqual([]);
    let keys = 0;
    for await (const _ of keyv.iterator?.(undefined) ?? []) keys += 1;
    expect(keys).toBe(0);
  });

  test('a burst of POSTs to a stored page invalidates it once at once, and once more at the end of the second', async () => {
    const { app, cache, renders } = setup();
    const seen = revalidations(cache);
    await request(app).get('/page');
    await cache.idle();
    await Promise.all(Array.from({ length: 50 }, () => request(app).post('/page')));
    expect(seen).toEqual(['unsafe-method /page']);
    const stale = await request(app).get('/page');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    await cache.idle();
    // The burst's trailing invalidation comes once its second is over (a real timer).
    await waitFor('the trailing invalidation', () => seen.length >= 2, 3000, 20);
    expect(seen).toEqual(['unsafe-method /page', 'unsafe-method /page']);
    expect(renders()).toBe(2);
  });
});
