import { MAX_KEY_LIFE_MS } from '../invalidation/freshness';
import type { ClockKind, TagClocks, TagTimes } from '../invalidation/tag-clocks';
import type { Guard } from './redis/lock';
import type { SerializedStore } from './serialized-store';

/**
 * Tag clocks kept in the shared store itself, so that every instance sees an invalidation
 * as soon as it is written. One key per tag and kind (`stale`, `expire`) holding a timestamp:
 * a bump is a plain write, with no read-modify-write that two instances could race on.
 * Keys start with `isr-clock:`; page keys start with `/`, so they never meet.
 *
 * A clock lives as long as the longest a page may (`MAX_KEY_LIFE_MS`, plus a day for renders
 * in flight): by the time it expires, every page it could have invalidated has too. A Keyv
 * store (or another `IsrStore`) has no "set if absent", so these clocks cannot tell an evicted clock from one never
 * written: with a store that evicts, use Redis (stores/redis/tag-clocks.ts).
 */
export class KeyvTagClocks implements TagClocks {
  constructor(
    private readonly store: SerializedStore,
    /** The store's timeout and circuit breaker (`GuardedStore.attempt`). */
    private readonly guard: Guard,
  ) {}

  async read(tags: readonly string[]): Promise<TagTimes> {
    const keys: string[] = [];
    for (const tag of tags) keys.push(clockKey('stale', tag), clockKey('expire', tag));
    const read = await this.guard(() => this.store.getNumbers(keys));
    // Clocks that cannot be read might hide an invalidation, an `expire` too: the page is
    // rendered again rather than served (invalidation/freshness.ts, `lost`).
    if (!read.ok) return { stale: 0, expire: 0, lost: 'expire' };
    const values = read.value;
    let stale = 0;
    let expire = 0;
    for (let i = 0; i < values.length; i += 2) {
      stale = Math.max(stale, values[i] ?? 0);
      expire = Math.max(expire, values[i + 1] ?? 0);
    }
    return { stale, expire };
  }

  async bump(tags: readonly string[], kind: ClockKind, at: number): Promise<void> {
    const clocks = new Map(tags.map((tag) => [clockKey(kind, tag), at]));
    const written = await this.guard(() =>
      this.store.setNumbers(clocks, MAX_KEY_LIFE_MS + ONE_DAY_MS),
    );
    if (!written.ok) throw new Error('the store is unavailable: the revalidation was not recorded');
  }
}

const ONE_DAY_MS = 24 * 3600 * 1000;

function clockKey(kind: ClockKind, tag: string): string {
  return `isr-clock:${kind}:${tag}`;
}
