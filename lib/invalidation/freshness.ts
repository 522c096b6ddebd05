import type { CacheEntry } from '../types';
import type { TagTimes } from './tag-clocks';

/**
 * - `fresh`: served as it is (`HIT`).
 * - `stale`: served at once (`STALE`) while it is regenerated in the background.
 * - `expired`: not served; the request renders it (`MISS`). `onError` says it may still be
 *   served if that render fails (within `staleIfError`, RFC 5861); an expired-on-demand page
 *   never may.
 */
export type Freshness =
  | { state: 'fresh' }
  | { state: 'stale'; reason: string }
  | { state: 'expired'; reason: string; onError?: true };

/**
 * Computed on read, never stored. A page is fresh until `revalidate` seconds after its render
 * started, unless a tag of it was revalidated at or after that moment, or another deploy
 * `version` rendered it. Once stale, it may be served stale for `maxStale` seconds, then
 * only when its render fails, for `staleIfError` more. A tag clock the store lost (evicted)
 * counts as the worst it could have said: the page cannot be trusted, so it is re-rendered.
 */
export function freshness(
  entry: CacheEntry,
  now: number,
  tags: TagTimes,
  version?: string,
): Freshness {
  const born = entry.generatedAt;
  if (tags.lost === 'expire') {
    return { state: 'expired', reason: 'an invalidation record it needs is gone or unreadable' };
  }
  if (tags.expire > 0 && tags.expire >= born)
    return { state: 'expired', reason: 'expired on demand' };

  // When it went stale: the end of its window, an on-demand `stale` (one that seems to come
  // from the future — a skewed clock — counts as now), or, its record lost, any time since it
  // was rendered: the worst is assumed.
  const windowEnd =
    entry.revalidate === false ? Number.POSITIVE_INFINITY : born + entry.revalidate * 1000;
  const invalidated =
    tags.lost === 'stale'
      ? born
      : tags.stale > 0 && tags.stale >= born
        ? Math.min(tags.stale, now)
        : undefined;
  const staleSince = Math.min(windowEnd, invalidated ?? Number.POSITIVE_INFINITY);
  if (now < staleSince) {
    if (version === entry.version) return { state: 'fresh' };
    return { state: 'stale', reason: `rendered by version ${entry.version ?? '(none)'}` };
  }
  const reason =
    tags.lost === 'stale'
      ? 'an invalidation record it needs is gone'
      : invalidated !== undefined && invalidated <= windowEnd
        ? 'revalidated on demand'
        : `older than ${entry.revalidate}s`;
  const staleFor = (now - staleSince) / 1000;
  if (entry.maxStale === false || staleFor < entry.maxStale) return { state: 'stale', reason };
  const past = `${reason}, stale for more than maxStale (${entry.maxStale}s)`;
  if (entry.staleIfError === false || staleFor < entry.maxStale + entry.staleIfError) {
    return { state: 'expired', reason: past, onError: true };
  }
  return { state: 'expired', reason: `${past} and staleIfError (${entry.staleIfError}s)` };
}

/**
 * The longest any key the cache writes lives in a shared store: a year. A page nothing else
 * bounds (`revalidate: false`, or `false` for `maxStale` or `staleIfError`) that nobody
 * re-rendered for that long is rendered afresh by its next visitor.
 */
export const MAX_KEY_LIFE_MS = 365 * 24 * 3600 * 1000;

/**
 * How long a page may be of use at most, from its render (ms): its window, `maxStale` and
 * `staleIfError`, capped at `MAX_KEY_LIFE_MS` (also what a `false` in any of them gets). An
 * on-demand `stale` only ever shortens it: it cannot come before the render.
 */
export function usefulLifeMs(entry: CacheEntry): number {
  if (entry.revalidate === false || entry.maxStale === false || entry.staleIfError === false)
    return MAX_KEY_LIFE_MS;
  return Math.min(MAX_KEY_LIFE_MS, (entry.revalidate + entry.maxStale + entry.staleIfError) * 1000);
}
