import { usefulLifeMs } from '../invalidation/freshness';
import type { PageIndex, TagIndex } from '../invalidation/tag-index';
import { debug, type Reporter } from '../observability/report';
import { clockTags, entryOf, PageLookups, variantKeyOf } from '../request/lookup';
import type { CacheEntry } from '../types';
import { MemoryStore } from './memory';
import type { CacheEvent, RedisEvents } from './redis/events';

/**
 * What `save` did: stored it, kept a newer entry already there, could not reach the store, or
 * left it out because an invalidation may have come during its render (`unsure`, see
 * stores/redis/tag-clocks.ts `hold`): the next request renders it again.
 */
export type SaveOutcome = 'stored' | 'newer-kept' | 'unavailable' | 'unsure';

/** How much longer a page's tag clocks are held than the page: its write may come late. */
const CLOCK_HOLD_MARGIN_MS = 60_000;

/**
 * How a rendered page is written: into the store (with its Vary record and tag clocks), into
 * L1, into the tag index, and told to the other instances. The `Engine` is one of these.
 */
export abstract class PageWrites extends PageLookups {
  abstract readonly reporter: Reporter;
  abstract readonly index: TagIndex;
  abstract readonly sharedIndex: PageIndex | undefined;
  protected abstract readonly events: RedisEvents | undefined;
  abstract get isLocalStore(): boolean;

  /** Removes the entry at `variantKey` everywhere. */
  async remove(variantKey: string): Promise<void> {
    await this.store.delete(variantKey);
    this.l1?.drop(variantKey);
    await this.broadcast({ type: 'delete', key: variantKey });
  }

  /**
   * This version found the page of `key` not cacheable any more: the pointer to an earlier
   * version's copy goes too, or that copy would go on being served `STALE` for ever.
   */
  async forgetEarlierVersions(key: string): Promise<void> {
    if (this.version !== undefined) await this.store.delete(this.latestKeyOf(key));
  }

  /**
   * Stores an entry under its URL's key — or, when the page varies on request headers, under
   * its variant's key with a Vary record at the URL's key (RFC 9111 §4.1). An entry never
   * replaces one rendered later (a slow regeneration loses to a fresher page).
   */
  async save(key: string, entry: CacheEntry, vary: string[]): Promise<SaveOutcome> {
    let target = key;
    const epoch = this.l1?.epoch ?? 0;
    // Who rendered it, for `cache.entry()` across instances: the process storing it.
    entry.renderedBy = this.options.instanceId;
    // In a shared store every key lives as long as the page may be of use, and no longer
    // (README, "Running many instances"); the memory store keeps to its byte budget instead.
    const ttl = this.isLocalStore ? undefined : usefulLifeMs(entry);
    if (ttl !== undefined) {
      // The clocks that judge the page first: it is never stored without them (see
      // stores/redis/tag-clocks.ts), and they outlive it.
      const at = this.options.now();
      const held = await this.clocks.hold?.(
        clockTags(entry),
        at,
        ttl + CLOCK_HOLD_MARGIN_MS,
        entry.generatedAt,
      );
      if (held === 'failed') {
        debug('store: %s not kept, its tag clocks could not be written', key);
        return 'unavailable';
      }
      if (held === 'unsure') {
        debug(
          'store: %s not kept, an invalidation its store cannot rule out came during its render',
          key,
        );
        return 'unsure';
      }
      entry.storedAt = at;
    }
    if (vary.length > 0) {
      await this.store.set(key, { vary }, ttl);
      this.l1?.put(key, { vary }, epoch);
      target = variantKeyOf(key, vary, entry.requestHeaders);
    }
    const current = entryOf(await this.store.get(target));
    if (current !== undefined && current.generatedAt > entry.generatedAt) {
      debug('store: %s kept, a newer render is already stored', target);
      return 'newer-kept';
    }
    const ok = await this.store.set(target, entry, ttl);
    if (ok !== false) {
      this.index.add({ key, variantKey: target }, clockTags(entry));
      this.l1?.put(target, entry, epoch);
      await this.broadcast({ type: 'set', key: target });
      if (this.version !== undefined) {
        await this.store.set(this.latestKeyOf(key), { latest: this.version }, ttl);
      }
      // Last: the other instances hear of the page first; only `regenerate` reads the index.
      await this.sharedIndex?.add({ key, variantKey: target }, clockTags(entry), ttl);
    }
    debug(
      'store: %s (%d bytes%s%s; %s)%s',
      target,
      entry.body.length,
      entry.br ? `, br ${entry.br.length}` : '',
      entry.gzip ? `, gzip ${entry.gzip.length}` : '',
      this.store instanceof MemoryStore
        ? 'in memory'
        : `~${storedSize(entry)} bytes stored, base64`,
      ok === false ? ' — store unavailable, not kept' : '',
    );
    return ok === false ? 'unavailable' : 'stored';
  }

  /** Tells the other instances; a failed publish is retried once, then reported. */
  protected async broadcast(event: CacheEvent): Promise<void> {
    if (this.events === undefined) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.events.publish(event);
        return;
      } catch (error) {
        if (attempt >= 2) {
          this.reporter.error(error, { phase: 'store-write' });
          return;
        }
      }
    }
  }
}

/** What an entry weighs in a Keyv store: its bodies in base64 plus headers and fields. */
function storedSize(entry: CacheEntry): number {
  const base64 = (n: number) => Math.ceil(n / 3) * 4;
  const bodies =
    base64(entry.body.length) + base64(entry.br?.length ?? 0) + base64(entry.gzip?.length ?? 0);
  return (
    bodies +
    JSON.stringify([entry.headers, entry.tags, entry.url, entry.etag, entry.requestHeaders])
      .length +
    100
  );
}
