import request from 'supertest';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { expressVersions } from '../helpers/express';
import { fakeClock } from '../helpers/time';

/** Closed after every test, even a failing one. */
const cleanups = cleanupsAfterEach();

describe.each(expressVersions)('MISS then HIT (%s)', (_name, createApp) => {
  function setup() {
    const clock = fakeClock();
    const cache = isr({ now: clock.now });
    cleanups.push(() => cache.close());
    const app = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.set('Content-Language', 'en');
      res.set('Link', '</style.css>; rel=preload; as=style');
      res.set('Connection', 'X-Secret-Hop');
      res.set('X-Secret-Hop', 'per-connection');
      res.send(`<h1>render ${renders}</h1>`);
    });
    return { app, cache, clock, renders: () => renders };
  }

  test('the first GET renders and is stored; the next is replayed without running the route', async () => {
    const { app, cache, renders } = setup();
    const first = await request(app).get('/page');
    expect(first.status).toBe(200);
    expect(first.headers['x-isr-cache']).toBe('MISS');
    expect(first.text).toBe('<h1>render 1</h1>');
    await cache.idle();

    const second = await request(app).get('/page');
    expect(second.status).toBe(200);
    expect(second.headers['x-isr-cache']).toBe('HIT');
    expect(second.text).toBe('<h1>render 1</h1>');
    expect(second.headers['content-type']).toMatch(/^text\/html/);
    expect(second.headers['content-language']).toBe('en');
    expect(second.headers.link).toBe('</style.css>; rel=preload; as=style');
    expect(second.headers['content-length']).toBe(String(Buffer.byteLength('<h1>render 1</h1>')));
    expect(second.headers['x-secret-hop']).toBeUndefined();
    expect(renders()).toBe(1);
  });
});
