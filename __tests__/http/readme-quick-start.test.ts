/**
 * The README's Quick start runs as written (copied into a file of its own), and the curl
 * session under it holds: MISS, HIT, the webhook by tag, then STALE and the new page.
 */
import type { Express } from 'express';
import request from 'supertest';
import type { IsrMiddleware } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { readmeExample } from '../helpers/readme-example';

const cleanups = cleanupsAfterEach();

test('the Quick start: MISS, HIT, a webhook by tag, STALE, then the new page', async () => {
  const example = readmeExample<{
    app: Express;
    cache: IsrMiddleware;
    posts: Record<string, string>;
    secret: string;
  }>('## Quick start', ['app', 'cache', 'posts', 'secret']);
  cleanups.push(example.remove);
  const { app, cache, posts, secret } = example.module;
  cleanups.push(() => cache.close());

  const miss = await request(app).get('/blog/hello');
  expect(miss.headers['x-isr-cache']).toBe('MISS');
  expect(miss.text).toBe('<h1>Hello, world</h1>');
  await cache.idle();
  expect((await request(app).get('/blog/hello')).headers['x-isr-cache']).toBe('HIT');

  posts.hello = 'Hello again'; // the CMS publishes
  const hook = await request(app)
    .post('/api/revalidate')
    .set('Authorization', `Bearer ${secret}`)
    .set('Content-Type', 'application/json')
    .send('{"tags":["post-hello"]}');
  expect(hook.status).toBe(200);
  expect(hook.body).toMatchObject({
    revalidated: true,
    paths: [],
    tags: ['post-hello'],
    mode: 'stale',
  });

  const stale = await request(app).get('/blog/hello');
  expect(stale.headers['x-isr-cache']).toBe('STALE');
  expect(stale.text).toBe('<h1>Hello, world</h1>');
  await cache.idle();
  const fresh = await request(app).get('/blog/hello');
  expect(fresh.headers['x-isr-cache']).toBe('HIT');
  expect(fresh.text).toBe('<h1>Hello again</h1>');
  expect((await request(app).get('/blog/nope')).status).toBe(404);
});
