/**
 * The revalidate router in front of a cache that is not `isr()`: any object with
 * `revalidatePath` and `revalidateTag` (the public `Revalidatable` type), without the
 * `revalidate` that records a call as one invalidation. Each target is its own call, made
 * whatever the others do; the answer says "revalidated" only when every one succeeded, and
 * otherwise a 503 says how many did not.
 */
import express from 'express';
import request from 'supertest';
import { type RevalidatePathOptions, type RevalidateTagOptions, revalidateRouter } from '../../lib';

const SECRET = 'plain-cache-secret-0123456789abcdef';

function plainCache(failing: string[] = []) {
  const calls: string[] = [];
  return {
    calls,
    async revalidatePath(path: string, options?: RevalidatePathOptions): Promise<void> {
      calls.push(`path ${path} ${options?.type} ${options?.mode}`);
      if (failing.includes(path)) throw new Error(`cannot revalidate ${path}`);
    },
    revalidateTag(tag: string, options?: RevalidateTagOptions): Promise<void> {
      calls.push(`tag ${tag} ${options?.mode}`);
      // Not even async: a synchronous throw is one failed target like any other.
      if (failing.includes(tag)) throw new Error(`cannot revalidate ${tag}`);
      return Promise.resolve();
    },
  };
}

function appFor(cache: ReturnType<typeof plainCache>) {
  const app = express();
  app.use('/api/revalidate', revalidateRouter(cache, { secret: SECRET }));
  return app;
}

describe('revalidateRouter over a cache without revalidate()', () => {
  test('every path and tag is revalidated with the mode asked, and the answer says so', async () => {
    const cache = plainCache();
    const answer = await request(appFor(cache))
      .post('/api/revalidate')
      .set('authorization', `Bearer ${SECRET}`)
      .send({ paths: ['/a', '/b'], tags: ['posts'], mode: 'expire' });
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      revalidated: true,
      paths: ['/a', '/b'],
      tags: ['posts'],
      mode: 'expire',
    });
    expect(cache.calls.sort()).toEqual([
      'path /a page expire',
      'path /b page expire',
      'tag posts expire',
    ]);
  });

  test('a target that fails: the others are still made, and a 503 counts the failures', async () => {
    const cache = plainCache(['/b', 'posts']);
    const answer = await request(appFor(cache))
      .post('/api/revalidate')
      .set('authorization', `Bearer ${SECRET}`)
      .send({ paths: ['/a', '/b'], tags: ['posts', 'news'] });
    expect(answer.status).toBe(503);
    expect(answer.body.error).toMatch(
      /^revalidation failed: 2 of 4 targets not revalidated: cannot revalidate/,
    );
    expect(answer.body.revalidated).toBeUndefined();
    expect(cache.calls).toHaveLength(4);
  });
});
