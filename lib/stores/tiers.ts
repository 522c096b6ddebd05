import { MemoryTagClocks, type TagClocks } from '../invalidation/tag-clocks';
import { InFlightLock, type InFlightSource } from '../observability/in-flight';
import { debug, type Reporter } from '../observability/report';
import type { ResolvedOptions } from '../options';
import { inProcessLock, type Lock } from '../render/lease';
import type { StoredValue } from '../types';
import { GuardedStore } from './guarded';
import { KeyvTagClocks } from './keyv-tag-clocks';
import { L1 } from './l1';
import { MemoryStore } from './memory';
import { keyvFromUrl, redisLinkOf } from './redis/client';
import { RedisEvents } from './redis/events';
import { indexedWalk } from './redis/indexed-walk';
import { RedisLock } from './redis/lock';
import { RedisPageIndex } from './redis/page-index';
import { RedisTagClocks } from './redis/tag-clocks';
import { SerializedStore } from './serialized-store';
import type { EntryStore } from './types';

/**
 * Walks the stored values — every one, or (from the shared index on Redis) the pages under
 * `prefix` — for inspection only: never on a request's path.
 */
export type Walk = (prefix?: string) => AsyncIterable<[string, StoredValue]>;

export interface Tiers {
  store: EntryStore;
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
  /** What `cache.health()` reads. */
  probe: StoreProbe;
}

/** The store as `cache.health()` sees it (observability/health.ts). */
export interface StoreProbe {
  kind: 'memory' | 'keyv' | 'redis';
  /** Resolves once the store answered a trivial command now (PING, a GET); the caller bounds it. */
  ping(): Promise<void>;
  /** The circuit breaker, for a remote store. */
  guarded?: GuardedStore;
  /** The in-process copy in front of Redis; whether it serves says whether pub/sub flows. */
  l1?: L1;
  /** The renders in flight: every instance's Redis leases, or this process's. */
  inFlight: InFlightSource;
}

/**
 * Builds the storage tiers from the options: the bounded memory store on its own; or any other
 * store (Keyv, or the user's own `IsrStore`) adapted to JSON and behind a guard (timeouts,
 * circuit breaker), with tag clocks in it — plus, when it is `@keyv/redis`, a Redis lease and
 * an L1 kept coherent by pub/sub.
 */
export function openTiers(options: ResolvedOptions, reporter: Reporter): Tiers {
  let given = options.store;
  let owned: Tiers['owned'];
  if (typeof given === 'string') {
    const opened = keyvFromUrl(given, options.storeTimeout);
    owned = { close: opened.close };
    given = opened.keyv;
  }
  const holder = {
    instance: options.instanceId,
    now: options.now,
    urlOf: (key: string) => pageUrlOf(key, options.version),
    // Past twice its deadline, a render is cut off (README, `regenerateTimeout`).
    forgetAfterMs: 2 * options.regenerateTimeout + 60_000,
  };
  if (given === undefined || given instanceof MemoryStore) {
    const memory = given ?? new MemoryStore({ maxSize: options.maxSize });
    const lock = new InFlightLock(options.lock ?? inProcessLock, holder);
    return {
      store: memory,
      walk: async function* () {
        for (const key of [...memory.keys()]) {
          const value = memory.peek(key);
          if (value !== undefined) yield [key, value];
        }
      },
      clocks: new MemoryTagClocks(),
      lock,
      probe: { kind: 'memory', ping: async () => {}, inFlight: lock },
    };
  }
  const link = redisLinkOf(given);
  const serialized = new SerializedStore(given);
  const guarded = new GuardedStore(serialized, {
    timeout: options.storeTimeout,
    now: options.now,
    onOutage: (error) => reporter.storeOutage(error),
    onRecovery: () => reporter.storeRecovered(),
    onRefusal: (error) => reporter.error(error, { phase: 'store-write' }),
    ready: link?.ready,
  });
  const guard = <T>(call: () => Promise<T>) => guarded.attempt(call);
  const redisLock =
    options.lock === undefined && link !== undefined
      ? new RedisLock(link, guard, holder)
      : undefined;
  const lock = redisLock ?? new InFlightLock(options.lock ?? inProcessLock, holder);
  const tiers: Tiers = {
    store: guarded,
    walk: () => serialized.entries(),
    clocks: new KeyvTagClocks(serialized, guard),
    lock,
    owned,
    probe: {
      kind: link ? 'redis' : 'keyv',
      ping: link
        ? async () => {
            await link.ready();
            const client = await link.client();
            await (client.ping ? client.ping() : client.exists('express-isr:health'));
          }
        : async () => {
            await serialized.get('express-isr:health');
          },
      guarded,
      inFlight: redisLock
        ? { scope: 'fleet', list: (...args) => redisLock.holders(...args) }
        : (lock as InFlightLock),
    },
  };
  // A render is cut off after twice `regenerateTimeout`; a minute on top for its store.
  if (link) tiers.clocks = new RedisTagClocks(link, guard, holder.forgetAfterMs);
  if (link) {
    const index = new RedisPageIndex(link, guard, options.now, options.version);
    tiers.pageIndex = index;
    tiers.walk = (prefix = '/') =>
      indexedWalk(
        index,
        prefix,
        (key) => guarded.get(key),
        () => serialized.entries(),
      );
  }
  if (link !== undefined && options.l1 !== false) {
    const l1 = new L1(options.l1.maxSize);
    tiers.l1 = l1;
    tiers.probe.l1 = l1;
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

/** The page URL in a cache key: without the deploy version before it and the variant after it. */
function pageUrlOf(key: string, version: string | undefined): string {
  const versioned = version === undefined ? '' : `v:${version}:`;
  const bare = versioned !== '' && key.startsWith(versioned) ? key.slice(versioned.length) : key;
  const variant = bare.indexOf('\0');
  return variant === -1 ? bare : bare.slice(0, variant);
}
