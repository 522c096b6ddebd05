/**
 * README, "Revalidate from your CMS": what a revalidation did is in its result and in the
 * webhook's answer — with `mode: 'regenerate'` how many pages were `regenerated`, `failed` or
 * are `pending`, and with `onRevalidate` (the CDN purge) whether it went through (`ok`),
 * threw (`failed`, and `onError` is told) or is still running (`pending`: a purge that hangs
 * never holds the answer, nor `close()`, past its bound). Memory store, real Express.
 */
import express from 'express';
import { type IsrOptions, isr, type RevalidationResult, revalidateRouter } from '../../lib';

import { cleanupsAfterEach } from '../helpers/cleanups';
import { errorRecorder } from '../helpers/collect';
import { listen } from '../helpers/http';

const cleanups = cleanupsAfterEach();
const SECRET = 'a-secret-long-enough-for-the-router';

async function site(options: IsrOptions = {}) {
  const recorder = errorRecorder();
  const cache = isr({ onError: recorder.onError, logger: recorder.logger, ...options });
  const app = express();
  let renders = 0;
  let version = 0;
  app.use(cache);
  app.get('/post/:id', (req, res) => {
    renders += 1;
    if (req.params.id === 'broken' && version > 0) throw new Error('cannot render');
    res.isr({ tags: ['posts'] });
    res.type('html').send(`<p>${req.params.id} version ${version}</p>`);
  });
  app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
  const server = await listen(app);
  cleanups.push(async () => {
    await cache.close();
    await server.close();
  });
  const get = async (path: string) => {
    const res = await fetch(server.url(path));
    return { state: res.headers.get('x-isr-cache'), body: await res.text() };
  };
  const webhook = async (body: Record<string, unknown>) => {
    const res = await fetch(server.url('/api/revalidate'), {
      method: 'POST',
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  return {
    cache,
    get,
    webhook,
    errors: recorder.errors,
    renders: () => renders,
    publish: () => {
      version += 1;
    },
  };
}

test('revalidate() resolves with the counts of a regenerate, and the purge runs after the re-renders', async () => {
  const rendersAtPurge: number[] = [];
  const s = await site({
    onRevalidate: () => {
      rendersAtPurge.push(s.renders());
    },
  });
  for (const id of ['a', 'b', 'broken']) expect((await s.get(`/post/${id}`)).state).toBe('MISS');
  await s.cache.idle();
  s.publish();

  const result: RevalidationResult = await s.cache.revalidate({
    tags: ['posts'],
    mode: 'regenerate',
  });
  expect(result).toEqual({ regenerated: 2, failed: 1, pending: 0, purge: 'ok' });
  expect(s.renders()).toBe(6);
  expect(rendersAtPurge).toEqual([6]);
  expect((await s.get('/post/a')).body).toBe('<p>a version 1</p>');
  expect(s.errors.map((e) => e.context.phase)).toEqual(['regenerate']);

  // The other modes re-render nothing, and say so by leaving the counts out.
  expect(await s.cache.revalidate({ tags: ['posts'], mode: 'stale' })).toEqual({ purge: 'ok' });
});

test('the webhook answers the counts and the purge state: ok, failed (told to onError)', async () => {
  let purges = 0;
  const s = await site({
    onRevalidate: async () => {
      purges += 1;
      if (purges === 2) throw new Error('the CDN said no');
    },
  });
  expect((await s.get('/post/a')).state).toBe('MISS');
  await s.cache.idle();

  const ok = await s.webhook({ tags: ['posts'], mode: 'regenerate' });
  expect(ok.status).toBe(200);
  expect(ok.body).toMatchObject({
    revalidated: true,
    mode: 'regenerate',
    regenerated: 1,
    failed: 0,
    pending: 0,
    purge: 'ok',
  });

  const failed = await s.webhook({ paths: ['/post/a'] });
  expect(failed.status).toBe(200);
  expect(failed.body).toMatchObject({ revalidated: true, mode: 'stale', purge: 'failed' });
  expect(failed.body).not.toHaveProperty('regenerated');
  expect(s.errors.map((e) => [e.context.phase, e.error.message])).toEqual([
    ['on-revalidate', 'the CDN said no'],
  ]);
});

test('a purge that never settles: the answer says pending (bounded), and close() still ends', async () => {
  const s = await site({
    regenerateTimeout: 300,
    onRevalidate: () => new Promise<void>(() => {}), // a CDN that never answers
  });
  expect((await s.get('/post/a')).state).toBe('MISS');
  await s.cache.idle();

  // Bounded by regenerateTimeout (the webhook helper gives up after 5 s).
  const answer = await s.webhook({ tags: ['posts'], mode: 'regenerate' });
  expect(answer.body).toMatchObject({ regenerated: 1, failed: 0, pending: 0, purge: 'pending' });
  let closed = false;
  const closing = s.cache.close().then(() => {
    closed = true;
  });
  await Promise.race([closing, new Promise((resolve) => setTimeout(resolve, 3000))]);
  expect(closed).toBe(true);
  expect(s.errors).toEqual([]);
});

test('without onRevalidate the answer has no purge field', async () => {
  const s = await site();
  const answer = await s.webhook({ tags: ['posts'], mode: 'regenerate' });
  expect(answer.body).toMatchObject({ regenerated: 0, failed: 0, pending: 0 });
  expect(answer.body).not.toHaveProperty('purge');
});
