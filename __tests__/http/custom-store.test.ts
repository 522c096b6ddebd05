/**
 * A store of the user's own, written against the exported `IsrStore` interface and nothing
 * else (no Keyv anywhere): a class over a Map that keeps values as JSON text, as a remote store
 * would, and answers synchronously. Through a real Express app: MISS then HIT, `revalidateTag`
 * (its clock is written into that store too), and a store that throws, which the visitor never
 * notices (README: The store contract).
 */
import type { Express } from 'express';
import request from 'supertest';
import { type IsrStore, isr } from '../../lib';
import { errorRecorder } from '../helpers/collect';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** The README's example store, with a switch that makes every call throw. */
class MapStore implements IsrStore {
  readonly map = new Map<string, string>();
  failing = false;
  calls = 0;

  get(key: string): unknown {
    this.check();
    const text = this.map.get(key);
    return text === undefined ? undefined : JSON.parse(text);
  }

  set(key: string, value: unknown): void {
    this.check();
    this.map.set(key, JSON.stringify(value));
  }

  delete(key: string): void {
    this.check();
    this.map.delete(key);
  }

  private check(): void {
    this.calls += 1;
    if (this.failing) throw new Error('the map store is down');
  }
}

describe.each(expressVersions)('a custom IsrStore without Keyv (%s)', (_name, createApp) => {
  function setup() {
    const store = new MapStore();
    const clock = fakeClock();
    const recorder = errorRecorder();
    const cache = isr({
      store,
      revalidate: 60,
      now: clock.now,
      onError: recorder.onError,
      logger: recorder.logger,
    });
    const app: Express = createApp();
    let renders = 0;
    let title = 'first';
    app.use(cache);
    app.get('/post', (_req, res) => {
      renders += 1;
      res.isr({ tags: ['posts'] });
      res.send(`<h1>${title}</h1>`);
    });
    return {
      app,
      cache,
      clock,
      recorder,
      store,
      renders: () => renders,
      retitle: (next: string) => {
        title = next;
      },
    };
  }

  test('MISS, then HIT from the store: the route runs once, the page is kept as JSON', async () => {
    const { app, cache, store, renders } = setup();
    const miss = await request(app).get('/post');
    expect(miss.status).toBe(200);
    expect(miss.headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    const stored = [...store.map.keys()].filter((key) => key.startsWith('/post'));
    expect(stored.length).toBeGreaterThan(0);

    const hit = await request(app).get('/post');
    expect(hit.headers['x-isr-cache']).toBe('HIT');
    expect(hit.text).toBe('<h1>first</h1>');
    expect(hit.headers.etag).toBe(miss.headers.etag);
    expect(renders()).toBe(1);
    await cache.close();
  });

  test('revalidateTag: the clock goes into the same store; STALE, then the new page', async () => {
    const { app, cache, store, renders, retitle } = setup();
    await request(app).get('/post');
    await cache.idle();
    expect((await request(app).get('/post')).headers['x-isr-cache']).toBe('HIT');

    retitle('second');
    await cache.revalidateTag('posts');
    expect([...store.map.keys()].some((key) => key.startsWith('isr-clock:'))).toBe(true);
    const stale = await request(app).get('/post');
    expect(stale.headers['x-isr-cache']).toBe('STALE');
    expect(stale.text).toBe('<h1>first</h1>');
    await cache.idle();

    const fresh = await request(app).get('/post');
    expect(fresh.headers['x-isr-cache']).toBe('HIT');
    expect(fresh.text).toBe('<h1>second</h1>');
    expect(renders()).toBe(2);
    await cache.close();
  });

  test('a store that throws fails open: every visitor gets the page, the outage is reported once', async () => {
    const { app, cache, clock, store, recorder, renders } = setup();
    store.failing = true;
    for (let i = 0; i < 3; i += 1) {
      const res = await request(app).get('/post');
      expect(res.status).toBe(200);
      expect(res.text).toBe('<h1>first</h1>');
      expect(res.headers['x-isr-cache']).toBe('MISS');
      await cache.idle();
    }
    expect(renders()).toBe(3);
    const outages = recorder.errors.filter(({ context }) => context.phase === 'store');
    expect(outages).toHaveLength(1);
    expect(outages[0].error.message).toBe('the map store is down');

    // Back up: after the breaker's pause, pages are stored and replayed again.
    store.failing = false;
    clock.advance(1001);
    expect((await request(app).get('/post')).headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    expect((await request(app).get('/post')).headers['x-isr-cache']).toBe('HIT');
    expect(renders()).toBe(4);
    await cache.close();
  });
});
