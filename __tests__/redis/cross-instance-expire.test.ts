/**
 * README, "Running many instances": an `expire` accepted on one instance is seen by the next
 * request on every instance. Here instance B has just rendered a page and is still storing it
 * (its write held by the test) when A expires it: B's next request must not get the page it
 * rendered before the expire — neither from its just-rendered copy nor from the late write.
 * Two caches in this process on the shared Redis, L1 off, a namespace of the test's own.
 */
import type { RequestListener } from 'node:http';
import KeyvRedis from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import { isr } from '../../lib';
import { cleanupsAfterEach } from '../helpers/cleanups';
import { deferred } from '../helpers/deferred';
import { listen } from '../helpers/http';
import { REDIS_URL, uniqueNamespace } from '../helpers/redis';
import { within } from '../helpers/time';

const cleanups = cleanupsAfterEach();

/** The same Keyv, whose first write of `key` waits for `release()`: a store still under way. */
function heldWriter(keyv: Keyv, key: string) {
  const release = deferred();
  let held = false;
  return {
    release: release.resolve,
    keyv: {
      store: keyv.store,
      namespace: keyv.namespace,
      get: (k: string) => keyv.get(k),
      set: async (k: string, value: unknown) => {
        if (k === key && !held) {
          held = true;
          await release.promise;
        }
        return keyv.set(k, value);
      },
      delete: (k: string) => keyv.delete(k),
      getMany: (keys: string[]) => keyv.getMany(keys),
      on: (event: 'error', listener: (error: unknown) => void) => keyv.on(event, listener),
    },
  };
}

test.each([
  ['through the middleware', false],
  ['behind cache.handler(app)', true],
])(
  '%s: after an expire on A, B never serves the page it rendered before it',
  async (_how, fastPath) => {
    const ns = uniqueNamespace('cross-instance-expire');
    const keyv = new Keyv({ store: new KeyvRedis(REDIS_URL), namespace: ns, useKeyPrefix: false });
    cleanups.push(async () => {
      await keyv.clear();
      await keyv.disconnect();
    });
    let content = 'secret draft';
    let renders = 0;
    const instance = (store: unknown) => {
      const cache = isr({ store: store as Keyv, l1: false });
      const app = express();
      app.use(cache);
      app.get('/post', (_req, res) => {
        renders += 1;
        res.type('html').send(`<h1>${content}</h1>`);
      });
      return { app, cache };
    };
    const held = heldWriter(keyv, '/post');
    const a = instance(keyv);
    const b = instance(held.keyv);
    const listener = (fastPath ? b.cache.handler(b.app) : b.app) as unknown as RequestListener;
    const onB = await listen(listener);
    cleanups.push(async () => {
      held.release();
      await onB.close();
      await within(5000, a.cache.close());
      await within(5000, b.cache.close());
    });

    const first = await onB.get('/post');
    expect(`${first.headers['x-isr-cache']} ${first.body}`).toBe('MISS <h1>secret draft</h1>');
    // B's page is rendered and being stored; the post is taken down on A.
    content = 'gone';
    await a.cache.revalidatePath('/post', { mode: 'expire' });

    const next = await onB.get('/post');
    expect(next.body).toBe('<h1>gone</h1>');
    expect(next.headers['x-isr-cache']).toBe('MISS');

    // B's old write lands after the expire: it is never served either, on B or on A.
    held.release();
    await b.cache.idle();
    for (let i = 0; i < 3; i += 1) {
      expect((await onB.get('/post')).body).toBe('<h1>gone</h1>');
    }
    expect(renders).toBeGreaterThanOrEqual(2);
  },
);
