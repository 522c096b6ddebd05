/**
 * Redis for scenarios that need a shared store. This Redis may be shared with other people:
 * every scenario works in its own namespace and deletes it afterwards with `keyv.clear()`
 * (a SCAN of that namespace only); never FLUSHALL.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import KeyvRedis from '@keyv/redis';
import Keyv from 'keyv';
import { onCleanup } from './cleanup';

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Whether something accepts TCP connections at `url`'s host and port (no hang when it is down). */
export function redisReachable(url = REDIS_URL, timeoutMs = 1000): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect({ host: hostname || '127.0.0.1', port: Number(port || 6379) });
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

export interface BenchKeyv {
  keyv: Keyv;
  namespace: string;
  /** Deletes the namespace's keys and disconnects. Also runs on Ctrl-C or a failure. */
  close(): Promise<void>;
}

/** A Keyv on Redis in a fresh `express-isr-bench-<label>-<random>` namespace. */
export function openKeyv(label: string, url = REDIS_URL): BenchKeyv {
  const namespace = `express-isr-bench-${label}-${randomBytes(4).toString('hex')}`;
  // useKeyPrefix: false, or keys would be prefixed twice (`ns::ns:key`).
  const keyv = new Keyv({
    store: new KeyvRedis(url, { connectionTimeout: 2000 }),
    namespace,
    useKeyPrefix: false,
  });
  keyv.on('error', (error) => console.error(`[bench] redis (${namespace}):`, error));
  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      unregister();
      try {
        await keyv.clear();
      } finally {
        await keyv.disconnect();
      }
    })();
    return closed;
  };
  const unregister = onCleanup(close);
  return { keyv, namespace, close };
}
