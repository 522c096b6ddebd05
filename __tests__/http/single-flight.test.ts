// Single flight: many concurrent requests for a cold page cause one render that they all share
// — unless it turned out uncacheable, then each renders for itself and nothing personal is
// shared; many concurrent requests for a stale page cause one regeneration. HEAD on a cold
// page stores the page for the GETs that follow.
import request from 'supertest';
import { isRegeneration, isr } from '../../lib';
import { deferred } from '../helpers/deferred';
import { expressVersions } from '../helpers/express';
import { arrivals, listen } from '../helpers/http';
import { fakeClock, sleep } from '../helpers/time';

const CONCURRENCY = 100;

interface Answer {
  status: number;
  state: string | null;
  body: string;
  setCookie: string | null;
}

async function getMany(url: string, count = CONCURRENCY): Promise<Answer[]> {
  return Promise.all(
    Array.from({ length: count }, async () => {
      const res = await fetch(url);
      return {
        status: res.status,
        state: res.headers.get('x-isr-cache'),
        body: await res.text(),
        setCookie: res.headers.get('set-cookie'),
      };
    }),
  );
}

describe.each(expressVersions)('single flight for cold pages (%s)', (_name, createApp) => {
  test(`${CONCURRENCY} concurrent requests for a cold page cause one render and all get it`, async () => {
    const cache = isr({ now: fakeClock().now });
    const app = createApp();
    const gate = arrivals(CONCURRENCY);
    let renders = 0;
    app.use(gate.middleware);
    app.use(cache);
    app.get('/cold', async (_req, res) => {
      renders += 1;
      const version = renders;
      await Promise.all([gate.allArrived, sleep(30)]);
      res.send(`<h1>render ${version}</h1>`);
    });
    const server = await listen(app);
    try {
      const answers = await getMany(server.url('/cold'));
      expect(renders).toBe(1);
      for (const answer of answers) {
        expect(answer).toEqual({
          status: 200,
          state: 'MISS',
          body: '<h1>render 1</h1>',
          setCookie: null,
        });
      }
      await cache.idle();
      const [after] = await getMany(server.url('/cold'), 1);
      expect(after.state).toBe('HIT');
      expect(renders).toBe(1);
    } finally {
      await server.close();
      await cache.close();
    }
  });

  test('when the render sets a cookie, every waiter renders for itself and gets only its own cookie', async () => {
    const cache = isr({ now: fakeClock().now });
    const app = createApp();
    const gate = arrivals(CONCURRENCY);
    let renders = 0;
    app.use(gate.middleware);
    app.use(cache);
    app.get('/personal', async (_req, res) => {
      renders += 1;
      const visitor = renders;
      await Promise.all([gate.allArrived, sleep(30)]);
      res.cookie('sid', `visitor-${visitor}`);
      res.send(`<h1>hello visitor ${visitor}</h1>`);
    });
    const server = await listen(app);
    try {
      const answers = await getMany(server.url('/personal'));
      // The render made for the first visitor proved the page personal and was theirs; each
      // waiter's own request then rendered for it.
      expect(renders).toBe(CONCURRENCY);
      const visitors = new Set<string>();
      for (const answer of answers) {
        expect(answer.status).toBe(200);
        expect(answer.state).toBe('BYPASS');
        const visitor = /^<h1>hello visitor (\d+)<\/h1>$/.exec(answer.body)?.[1];
        expect(visitor).toBeDefined();
        // The cookie belongs to the render that produced this very body.
        expect(answer.setCookie).toMatch(new RegExp(`^sid=visitor-${visitor};`));
        visitors.add(visitor as string);
      }
      expect(visitors.size).toBe(CONCURRENCY);
    } finally {
      await server.close();
      await cache.close();
    }
  });

  test('when the first render answers 500, the waiters get its error page instead of rendering it again', async () => {
    const cache = isr({ now: fakeClock().now });
    const app = createApp();
    const gate = arrivals(CONCURRENCY);
    let renders = 0;
    app.use(gate.middleware);
    app.use(cache);
    app.get('/flaky', async (_req, res) => {
      renders += 1;
      const attempt = renders;
      await Promise.all([gate.allArrived, sleep(30)]);
      if (attempt === 1) res.status(500).send('<h1>database down</h1>');
      else res.send(`<h1>render ${attempt}</h1>`);
    });
    const server = await listen(app);
    try {
      const answers = await getMany(server.url('/flaky'));
      // README: a failed render is shared (an error page with no cookie, not private), not
      // repeated by every waiter.
      // The first visitor's included: each is a MISS with the error page passed on.
      expect(renders).toBe(1);
      expect(answers).toHaveLength(CONCURRENCY);
      for (const answer of answers) {
        expect(answer).toEqual({
          status: 500,
          state: 'MISS',
          body: '<h1>database down</h1>',
          setCookie: null,
        });
      }
    } finally {
      await server.close();
      await cache.close();
    }
  });
});

describe.each(expressVersions)('single flight for stale pages (%s)', (_name, createApp) => {
  test(`${CONCURRENCY} concurrent requests for a stale page cause one regeneration`, async () => {
    const clock = fakeClock();
    const cache = isr({ now: clock.now, revalidate: 10 });
    const app = createApp();
    const regenerationMayFinish = deferred();
    let renders = 0;
    let regenerations = 0;
    app.use(cache);
    app.get('/news', async (req, res) => {
      renders += 1;
      const version = renders;
      // The first render (the MISS's, a request of the cache's own too) is not held.
      if (isRegeneration(req) && version > 1) {
        regenerations += 1;
        await regenerationMayFinish.promise;
      }
      res.send(`<h1>news ${version}</h1>`);
    });
    const server = await listen(app);
    try {
      const [first] = await getMany(server.url('/news'), 1);
      expect(first.state).toBe('MISS');
      await cache.idle();

      clock.advanceSeconds(11);
      // The regeneration is held open until every request has been answered.
      const answers = await getMany(server.url('/news'));
      for (const answer of answers) {
        expect(answer).toEqual({
          status: 200,
          state: 'STALE',
          body: '<h1>news 1</h1>',
          setCookie: null,
        });
      }
      expect(regenerations).toBe(1);
      expect(renders).toBe(2);

      regenerationMayFinish.resolve();
      await cache.idle();
      const [after] = await getMany(server.url('/news'), 1);
      expect(after.state).toBe('HIT');
      expect(after.body).toBe('<h1>news 2</h1>');
      expect(renders).toBe(2);
    } finally {
      regenerationMayFinish.resolve();
      await server.close();
      await cache.close();
    }
  });
});

describe.each(expressVersions)('HEAD on a cold page (%s)', (_name, createApp) => {
  test('is answered with headers and no body, and stores the page for the next GET', async () => {
    const cache = isr({ now: fakeClock().now });
    const app = createApp();
    let renders = 0;
    app.use(cache);
    app.get('/page', (_req, res) => {
      renders += 1;
      res.send(`<h1>render ${renders}</h1>`);
    });
    const server = await listen(app);
    try {
      const head = await fetch(server.url('/page'), { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('x-isr-cache')).toBe('MISS');
      expect(head.headers.get('content-type')).toMatch(/^text\/html/);
      expect((await head.arrayBuffer()).byteLength).toBe(0);
      await cache.idle();

      const get = await request(app).get('/page');
      expect(get.status).toBe(200);
      expect(get.headers['x-isr-cache']).toBe('HIT');
      expect(get.text).toBe('<h1>render 1</h1>');
      expect(get.headers['content-length']).toBe(String(Buffer.byteLength('<h1>render 1</h1>')));
      expect(renders).toBe(1);
    } finally {
      await server.close();
      await cache.close();
    }
  });
});
