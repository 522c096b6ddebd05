import { MemoryTagClocks, type TagClocks } from '../invalidation/tag-clocks';
import { debug, type Reporter } from '../observability/report';
import type { ResolvedOptions } from '../options';
import { inProcessLock, type Lock } from '../render/lease';
import type { StoredValue } from '../types';
import { GuardedStore } from './guarded';
import { type KeyvLike, KeyvStore } from './keyv';
import { KeyvTagClocks } from './keyv-tag-clocks';
import { L1 } from './l1';
import { MemoryStore } from './memory';
import { keyvFromUrl, redisLinkOf } from './redis/client';
import { RedisEvents } from './redis/events';
import { indexedWalk } from './redis/indexed-walk';
import { RedisLock } from './redis/lock';
import { RedisPageIndex } from './redis/page-index';
import { RedisTagClocks } from './redis/tag-clocks';

/**
 * The store as the engine uses it: the memory store answers synchronously; a remote store is
 * guarded (bounded in time, failing open) and says with `false` when a write did not happen.
 */
export interface Backend {
  get(key: string): StoredValue | undefined | Promise<StoredValue | undefined>;
  set(key: string, value: StoredValue, ttlMs?: number): unknown;
  delete(key: string): unknown;
}

/**
 * Walks the stored values — every one, or (from the shared index on Redis) the pages under
 * `prefix` — for inspection only: never on a request's path.
 */
export type Walk = (prefix?: string) => AsyncIterable<[string, StoredValue]>;

export interface Tiers {
  store: Backend;
  walk: Walk;
  clocks: TagClocks;
  lock: Lock;
  /** With Redis: the in-process copy and the events that keep it coherent. */
  l1?: L1;
  events?: RedisEvents;
  /** With Redis: which pages carry which tags, shared by every instance. */
  pageIndex?: RedisPageIndex;
  /** A store `isr()` created itself (from a URL), closed by `close()`. */
  owned?: { close(): Promise<void> };
}

/**
 * Builds the storage tiers from the options: the bounded memory store on its own; or a Keyv
 * store behind a guard (timeouts, circuit breaker), with tag clocks in it — plus, when it is
 * `@keyv/redis`, a Redis lease and an L1 kept coherent by pub/sub.
 */
export function openTiers(options: ResolvedOptions, reporter: Reporter): Tiers {
  let given = options.store;
  let owned: Tiers['owned'];
  if (typeof given === 'string') {
    const opened = keyvFromUrl(given, options.storeTimeout);
    owned = { close: opened.close };
    given = opened.keyv;
  }
  if (given === undefined || given instanceof MemoryStore) {
    const memory = given ?? new MemoryStore({ maxSize: options.maxSize });
    return {
      store: memory,
      walk: async function* () {
        for (const key of [...memory.keys()]) {
          const value = memory.peek(key);
          if (value !== undefined) yield [key, value];
        }
      },
      clocks: new MemoryTagClocks(),
      lock: options.lock ?? inProcessLock,
    };
  }
  const link = redisLinkOf(given as KeyvLike);
  const keyvStore = new KeyvStore(given as KeyvLike);
  const guarded = new GuardedStore(keyvStore, {
    timeout: options.storeTimeout,
    now: options.now,
    onOutage: (error) => reporter.storeOutage(error),
    onRecovery: () => reporter.storeRecovered(),
    onRefusal: (error) => reporter.error(error, { phase: 'store-write' }),
    ready: link?.ready,
  });
  const tiers: Tiers = {
    store: guarded,
    walk: () => keyvStore.entries(),
    clocks: new KeyvTagClocks(guarded),
    lock: inProcessLock,
    owned,
  };
  const guard = <T>(call: () => Promise<T>) => guarded.attempt(call);
  tiers.lock = options.lock ?? (link ? new RedisLock(link, guard) : inProcessLock);
  // A render is cut off after twice `regenerateTimeout`; a minute on top for its store.
  if (link) tiers.clocks = new RedisTagClocks(link, guard, 2 * options.regenerateTimeout + 60_000);
  if (link) {
    const index = new RedisPageIndex(link, guard, options.now, options.version);
    tiers.pageIndex = index;
    tiers.walk = (prefix = '/') =>
      indexedWalk(
        index,
        prefix,
        (key) => guarded.get(key),
        () => keyvStore.entries(),
      );
  }
  if (link !== undefined && options.l1 !== false) {
    const l1 = new L1(options.l1.maxSize);
    tiers.l1 = l1;
    tiers.events = new RedisEvents(link, options.storeTimeout, {
      onEvent: (event) => {
        if (event.type === 'bump') l1.bump(event.tags, event.kind, event.at);
        else l1.replacedElsewhere(event.key);
      },
      onLive: (live) => {
        debug(
          'l1: %s',
          live ? 'events flowing, serving from memory' : 'events interrupted, emptied',
        );
        l1.setLive(live);
      },
      onFailure: (error) => debug('redis: %s', String((error as Error)?.message ?? error)),
    });
  }
  return tiers;
}
