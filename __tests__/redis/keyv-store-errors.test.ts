/**
 * Keyv reports an adapter's failures as `error` events on the Keyv instance, not on the call
 * that failed. A read that came back with a page was a read that worked: an error event from
 * another call meanwhile (a write refused while Redis is out of memory) must not turn it into a
 * miss. On a redis-server of the test's own (its memory limit is changed), killed after.
 */
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { isr } from '../../lib';
import { RedisServer } from '../helpers/instances';
import { lateReader } from '../helpers/late-reader';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** A redis-server of this test's own (its memory limit is changed), stopped after the test. */
async function ownRedis(): Promise<string> {
  const server = await RedisServer.start();
  cleanups.push(() => server.stop());
  return server.url;
}

async function adminClient(url: string) {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  cleanups.push(async () => client.destroy());
  return client;
}

describe('a Keyv error event during a read that returned a page', () => {
  test('Redis out of memory: a page stored in Redis is a HIT even while another page’s write is refused', async () => {
    const url = await ownRedis();
    const admin = await adminClient(url);
    const keyv = new Keyv({ store: new KeyvRedis(url), namespace: 'isr', useKeyPrefix: false });
    cleanups.push(() => keyv.disconnect());
    const late = lateReader(keyv);
    let renders = 0;
    const cache = isr({ store: late.keyv, l1: false, storeTimeout: 5000, onError: () => {} });
    cleanups.push(() => cache.close());
    const app = express();
    app.use(cache);
    app.get('/:page', (req, res) => {
      if (req.params.page === 'a') renders += 1;
      res.send(`<p>${req.params.page}</p>`);
    });
    expect((await request(app).get('/a')).headers['x-isr-cache']).toBe('MISS');
    await cache.idle();
    expect((await request(app).get('/a')).headers['x-isr-cache']).toBe('HIT');

    // Redis full (noeviction): reads work, writes are refused with OOM.
    await admin.configSet('maxmemory', '1');
    cleanups.push(() => admin.configSet('maxmemory', '0'));

    const paused = late.pauseNextGet('/a');
    const onA = request(app)
      .get('/a')
      .then((r) => r);
    await paused.read; // /a's page has been read from Redis
    expect((await request(app).get('/b')).headers['x-isr-cache']).toBe('MISS'); // its write: OOM
    await cache.idle();
    paused.release();

    const answer = await onA;
    // README: "a refused write is no outage of reads" / pages already stored are still served.
    expect({ state: answer.headers['x-isr-cache'], renders }).toEqual({ state: 'HIT', renders: 1 });
  });
});
