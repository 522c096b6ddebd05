import type { StoredValue } from '../types';

/**
 * What the `store` option takes (README: The store contract): a key-value store of JSON-safe
 * values. A Keyv instance, with any adapter, is one as it is; so is any object of your own with
 * these methods — a Map, a database table, another cache client. Every method may be
 * synchronous or return a promise, and may throw or reject: the cache bounds each call by
 * `storeTimeout` and fails open.
 */
export interface IsrStore {
  /** The value stored at `key`, or `undefined` (`null` counts as absent). */
  get(key: string): unknown;
  /**
   * Stores `value` at `key`, replacing what was there, to expire after `ttlMs` milliseconds
   * when given. The value is JSON-safe (bodies are base64 strings): any serializer keeps it
   * intact. Answering `false` says the value was not stored.
   */
  set(key: string, value: unknown, ttlMs?: number): unknown;
  /** Removes `key`; a missing key is not an error. */
  delete(key: string): unknown;
  /** Keyv's error events: an error during a call makes that call count as failed. */
  on?(event: 'error', listener: (error: unknown) => void): unknown;
  /** Reads many keys in one round trip (Keyv 5: `MGET` on Redis); used when present. */
  getMany?(keys: string[]): Promise<unknown[]>;
  /**
   * Walks every `[key, value]` pair, for `cache.entries()` (Keyv 5: `SCAN` on Redis). Typed
   * loosely: its declared type differs between Keyv versions.
   */
  iterator?: unknown;
}

/**
 * The name this interface had when it was only Keyv's shape.
 * @deprecated use {@link IsrStore}
 */
export type KeyvLike = IsrStore;

/**
 * The store as the cache talks to it, whatever the user gave: the memory store is one itself
 * (objects, answered synchronously); an {@link IsrStore} is adapted to it (`SerializedStore`:
 * entries as JSON) and guarded (`GuardedStore`: timeouts, circuit breaker), which answers
 * `false` when a write did not happen.
 */
export interface EntryStore {
  get(key: string): StoredValue | undefined | Promise<StoredValue | undefined>;
  /** Resolves `false` when the value was not written (the guard, during an outage). */
  set(key: string, value: StoredValue, ttlMs?: number): unknown;
  delete(key: string): unknown;
}

export function isStore(value: unknown): value is IsrStore {
  const v = value as IsrStore | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.get === 'function' &&
    typeof v.set === 'function' &&
    typeof v.delete === 'function'
  );
}
