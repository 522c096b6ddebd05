/**
 * Tag clocks: when each tag was last revalidated, per mode. An entry is stale (or expired)
 * when any of its tags — its own and the implicit ones for its path and parent prefixes —
 * was revalidated at or after the moment its render started. Invalidation is therefore one
 * small write per tag, whatever the number of pages, and never a scan of the cache.
 */
export interface TagTimes {
  /** Latest `stale`/`regenerate` revalidation among the tags (ms), 0 if none. */
  stale: number;
  /** Latest `expire` revalidation among the tags (ms), 0 if none. */
  expire: number;
  /**
   * A clock the page needs is gone from the store (evicted), or could not be read: what it
   * said cannot be known. `'expire'` when it may have been an expire clock (the page may have
   * been removed), else `'stale'`.
   */
  lost?: 'stale' | 'expire';
}

/** The two kinds of invalidation a clock records. */
export type ClockKind = 'stale' | 'expire';

export interface TagClocks {
  /**
   * The clocks of `tags`, for a page written to the store at `storedAt` (undefined: not
   * stored yet, nothing can have been lost since).
   */
  read(tags: readonly string[], storedAt?: number): TagTimes | Promise<TagTimes>;
  bump(tags: readonly string[], kind: ClockKind, at: number): void | Promise<void>;
  /**
   * Before a page carrying `tags` is written at `at`, to be kept `lifeMs`: makes sure its clocks
   * outlive it, so that a clock found missing later means evicted, not never written. False
   * when that could not be done (the page is then not written). Stores that never evict
   * keys (the memory clocks) need not implement it.
   */
  hold?(
    tags: readonly string[],
    at: number,
    lifeMs: number,
    renderedAt: number,
  ): Promise<'held' | 'failed' | 'unsure'>;
}

/** Tag clocks kept in this process; bounded without ever forgetting an invalidation. */
export class MemoryTagClocks implements TagClocks {
  private readonly clocks = new Map<string, TagTimes>();
  /**
   * When a clock must be dropped to stay within `limit`, its times are folded into this floor,
   * which applies to every tag: entries older than a forgotten invalidation are treated as
   * invalidated too. Conservative (a few extra regenerations), never wrong.
   */
  private readonly floor: TagTimes = { stale: 0, expire: 0 };

  constructor(private readonly limit = 100_000) {}

  read(tags: readonly string[]): TagTimes {
    let stale = this.floor.stale;
    let expire = this.floor.expire;
    for (const tag of tags) {
      const clock = this.clocks.get(tag);
      if (clock === undefined) continue;
      if (clock.stale > stale) stale = clock.stale;
      if (clock.expire > expire) expire = clock.expire;
    }
    return { stale, expire };
  }

  bump(tags: readonly string[], kind: ClockKind, at: number): void {
    for (const tag of tags) {
      const clock = this.clocks.get(tag) ?? { stale: 0, expire: 0 };
      clock[kind] = Math.max(clock[kind], at);
      this.clocks.delete(tag); // re-insert: the Map's order is least recently bumped first
      this.clocks.set(tag, clock);
    }
    for (const [tag, clock] of this.clocks) {
      if (this.clocks.size <= this.limit) break;
      this.clocks.delete(tag);
      this.floor.stale = Math.max(this.floor.stale, clock.stale);
      this.floor.expire = Math.max(this.floor.expire, clock.expire);
    }
  }
}
