/**
 * Keyv reports an adapter's failures as `error` events on the Keyv instance, not on the call
 * that failed. A read that came back with a page was a read that worked: an error event from
 * another call meanwhile (a write refused while Redis is out of memory) must not turn it into a
 * miss. On a redis-server of the test's own (its memory limit is changed), killed after.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import request from 'supertest';
import { isr } from '../lib';
import { deferred } from './helpers/deferred';
import { freePort, sleep } from './helpers/instances';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

/** A throwaway redis-server of this test's own, killed after the test. */
async function ownRedis(extra: string[] = []): Promise<string> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1', ...extra],
    { stdio: 'ignore' },
  );
  cleanups.push(async () => {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  });
  for (let i = 0; i < 200; i += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (up) return `redis://127.0.0.1:${port}`;
    await sleep(20);
  }
  throw new Error('redis-server did not start');
}

async function adminClient(url: string) {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  await client.connect();
  cleanups.push(async () => client.destroy());
  return client;
}

/** A Keyv-shaped wrapper whose next `get` of a key reads at once but answers when released. */
function pausable(keyv: Keyv) {
  let armed: { key: string; read: () => void; release: Promise<void> } | undefined;
  const counts = { get: 0 };
  const wrapper = {
    store: keyv.store,
    namespace: keyv.namespace,
    get: async (key: string) => {
      counts.get += 1;
      const value = await keyv.get(key);
      const pause = armed;
      if (pause !== undefined && pause.key === key) {
        armed = undefined;
        pause.read();
        await pause.release;
      }
      return value;
    },
    set: (key: string, value: unknown) => keyv.set(key, value),
    delete: (key: string) => keyv.delete(key),
    getMany: (keys: string[]) => keyv.getMany(keys),
    on: (event: 'error', listener: (error: unknown) => void) => keyv.on(event, listener),
  };
  return {
    keyv: wrapper,
    counts,
    pauseNextGet(key: string) {
      const read = deferred();
      const release = deferred();
      armed = { key, read: read.resolve, release: release.promise };
      return { read: read.promise, release: release.resolve };
    },
  };
}

describe('a Keyv error event during a read that returned a page', () => {
  test('Redis out of memory: a page stored in Redis is a HIT even while another page’s write is refused', async () => {
    const url = await ownRedis();
    const admin = await adminClient(url);
    const keyv = new Keyv({ store: new KeyvRedis(url), namespace: 'isr', useKeyPrefix: false });
    cleanups.push(() => keyv.disconnect());
    const late = pausable(keyv);
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
