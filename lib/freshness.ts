import type { TagTimes } from './tag-clocks';
import type { CacheEntry } from './types';

export type Freshness = { state: 'fresh' } | { state: 'stale' | 'expired'; reason: string };

/**
 * Computed on read, never stored: fresh until `revalidate` seconds after the render started,
 * unless a tag of the entry was revalidated at or after that moment. `expired` entries must
 * not be served at all (`mode: 'expire'`).
 */
export function freshness(entry: CacheEntry, now: number, tags: TagTimes): Freshness {
  if (tags.expire > 0 && tags.expire >= entry.generatedAt)
    return { state: 'expired', reason: 'expired on demand' };
  if (tags.stale > 0 && tags.stale >= entry.generatedAt)
    return { state: 'stale', reason: 'revalidated on demand' };
  if (entry.revalidate !== false && now >= entry.generatedAt + entry.revalidate * 1000) {
    return { state: 'stale', reason: `older than ${entry.revalidate}s` };
  }
  return { state: 'fresh' };
}
