import { createRequire } from 'node:module';
import { missingPackage } from '../../validate';
import type { KeyvLike } from '../types';

/**
 * The few node-redis commands the coordination needs (leases and pub/sub). Structural, so a
 * standalone client and a cluster client both fit, whichever copy of `redis` the user has.
 */
export interface RedisCommands {
  set(key: string, value: string, options: { NX: true; PX: number }): Promise<unknown>;
  get(key: string): Promise<string | null>;
  mGet(keys: string[]): Promise<(string | null)[]>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  exists(key: string): Promise<number>;
  /** Standalone clients only (a cluster client has none): lists the lease keys. */
  scan?(
    cursor: string,
    options: { MATCH: string; COUNT: number },
  ): Promise<{ cursor: string | number; keys: string[] }>;
  ping?(): Promise<unknown>;
  publish(channel: string, message: string): Promise<unknown>;
  duplicate(): RedisSubscriber;
}

export interface RedisSubscriber {
  connect(): Promise<unknown>;
  subscribe(channel: string, listener: (message: string) => void): Promise<unknown>;
  on(
    event: 'error' | 'end' | 'reconnecting' | 'ready',
    listener: (...args: unknown[]) => void,
  ): unknown;
  destroy?(): unknown;
  /** node-redis: the socket no longer keeps the process alive. */
  unref?(): void;
  quit?(): Promise<unknown>;
  close?(): Promise<unknown>;
  isOpen?: boolean;
  isReady?: boolean;
}

interface RedisEventSource {
  isReady: boolean;
  once(event: 'ready', listener: () => void): unknown;
}

interface KeyvRedisLike {
  getClient(): Promise<RedisCommands>;
  client: unknown;
  namespace?: string;
  keyPrefixSeparator?: string;
  isCluster?(): boolean;
}

/** The `@keyv/redis` adapter behind a Keyv instance, if that is what it is. */
function redisAdapterOf(keyv: KeyvLike): KeyvRedisLike | undefined {
  const adapter = (keyv as { store?: unknown }).store as Partial<KeyvRedisLike> | undefined;
  if (typeof adapter?.getClient !== 'function' || adapter.client === undefined) return undefined;
  const client = adapter.client as Partial<RedisCommands>;
  if (typeof client.eval !== 'function' || typeof client.publish !== 'function') return undefined;
  return adapter as KeyvRedisLike;
}

/** A prefix for our own Redis keys and channel that follows the store's namespace. */
function namespaceOf(keyv: KeyvLike, adapter: KeyvRedisLike): string {
  const ns = (keyv as { namespace?: string }).namespace ?? adapter.namespace;
  return ns ? `${ns}:` : '';
}

export interface RedisLink {
  /** Connects (once) and gives the node-redis client behind the store. */
  client(): Promise<RedisCommands>;
  /**
   * Resolves once the client can take commands. `@keyv/redis` hands the client out while it is
   * still connecting; with `disableOfflineQueue` a command sent then fails at once.
   */
  ready(): Promise<void>;
  /** Prefix for lease keys and the event channel, from the store's namespace. */
  prefix: string;
  /**
   * The Redis key the store gives `key` (`namespace::key`): keys written beside the store's own
   * (tag clocks) stay in its namespace, so that clearing the store clears them too.
   */
  storeKey(key: string): string;
  /** A Redis Cluster: keys of one command must share a slot, so no MGET across tags. */
  cluster: boolean;
}

/** Finds the Redis client behind a `@keyv/redis` store, to take leases and publish events. */
export function redisLinkOf(keyv: KeyvLike): RedisLink | undefined {
  const adapter = redisAdapterOf(keyv);
  if (adapter === undefined) return undefined;
  // One connection attempt shared by every caller: `@keyv/redis` hands the client out as soon as
  // it is connecting, and a cluster client that has not yet learnt which node owns which slot
  // fails the commands sent meanwhile. Awaiting this first connect() avoids both.
  let connecting: Promise<RedisCommands> | undefined;
  const client = () => {
    connecting ??= adapter.getClient().catch((error: unknown) => {
      connecting = undefined; // try again next time
      throw error;
    });
    return connecting;
  };
  let reconnected: Promise<void> | undefined;
  const ready = async () => {
    const c = (await client()) as RedisCommands & Partial<RedisEventSource>;
    if (c.isReady !== false || typeof c.once !== 'function') return;
    // Reconnecting after an outage: every caller waits for the same 'ready' (each bounds its wait).
    reconnected ??= new Promise<void>((resolve) =>
      c.once?.('ready', () => {
        reconnected = undefined;
        resolve();
      }),
    );
    await reconnected;
  };
  const ns = (keyv as { namespace?: string }).namespace ?? adapter.namespace;
  const separator = adapter.keyPrefixSeparator ?? '::';
  const storeKey = (key: string) => (ns ? `${ns}${separator}${key}` : key);
  const cluster = adapter.isCluster?.() === true;
  return { client, ready, prefix: namespaceOf(keyv, adapter), storeKey, cluster };
}

/**
 * `isr({ store: 'redis://…' })`: a Keyv over `@keyv/redis` configured so that an outage is
 * seen quickly instead of queued forever: no offline queue, bounded connect and
 * socket timeouts, a ping that keeps the socket timeout from closing an idle client.
 */
export function keyvFromUrl(
  url: string,
  timeout: number,
): { keyv: KeyvLike; close(): Promise<void> } {
  const require = createRequire(__filename);
  let Keyv: new (options: object) => KeyvLike;
  let KeyvRedis: new (
    connect: object,
    options: object,
  ) => { disconnect(force?: boolean): Promise<void> };
  try {
    Keyv = require('keyv').Keyv ?? require('keyv');
    KeyvRedis = require('@keyv/redis').default ?? require('@keyv/redis');
  } catch {
    missingPackage(
      'store: "redis://…"',
      'the packages keyv and @keyv/redis',
      'keyv@^5.6 @keyv/redis@^5.1',
    );
  }
  const store = new KeyvRedis(
    {
      url,
      disableOfflineQueue: true,
      pingInterval: 1000,
      socket: {
        connectTimeout: timeout * 4,
        socketTimeout: timeout * 4,
        // Capped at 1 s: node-redis waits out the current delay even after destroy(), so the cap
        // is also how long a closed client can delay process exit.
        reconnectStrategy: (retries: number) => Math.min(100 * 2 ** retries, 1000),
      },
    },
    { throwOnConnectError: false, connectionTimeout: timeout },
  );
  return {
    keyv: new Keyv({ store, namespace: 'express-isr', useKeyPrefix: false }),
    // Forced: a graceful close would wait for a Redis that may be gone, reconnecting meanwhile.
    close: () => store.disconnect(true),
  };
}
