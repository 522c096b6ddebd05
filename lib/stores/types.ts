import type { StoredValue } from '../types';

/**
 * What the middleware needs from a store. The default is the bounded {@link MemoryStore};
 * any Keyv instance is adapted to it by `KeyvStore`. Implement it yourself to plug in
 * something else: every method may throw or reject, and the middleware fails open.
 */
export interface EntryStore {
  /** The value at `key`, or `undefined`. */
  get(key: string): Promise<StoredValue | undefined> | StoredValue | undefined;
  /**
   * Stores `value` at `key`, replacing what was there, for `ttlMs` milliseconds when given (a
   * store that evicts by its own budget, like the memory store, may ignore it).
   */
  set(key: string, value: StoredValue, ttlMs?: number): Promise<void> | void;
  /** Removes `key`; a missing key is not an error. */
  delete(key: string): Promise<void> | void;
}
