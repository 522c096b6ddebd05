import { layoutTag } from '../../request/cache-key';
import type { StoredValue } from '../../types';
import type { RedisPageIndex } from './page-index';

/** Pages read from the index, then from the store, at a time. */
const BATCH = 100;

/**
 * The tag every page whose URL starts with `prefix` carries: the layout of the folder the
 * prefix ends in (`/blog/` and `/blog/a` → `layout:/blog`), so a listing under a prefix reads
 * that folder's set, not the whole site's. A prefix the path folding could spell otherwise
 * (characters outside RFC 3986's unreserved ones, dot segments) reads the root's.
 */
function listingTag(prefix: string): string {
  const folder = prefix.slice(0, prefix.lastIndexOf('/'));
  if (!/^(\/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$/.test(folder) || /\/\.\.?(\/|$)/.test(folder))
    return layoutTag('/');
  return layoutTag(folder);
}

/**
 * `cache.entries()` on Redis: the pages the shared index holds under `prefix` — every
 * instance's, however many other keys the Redis holds — each read from the store. When the
 * index has nothing there or cannot be read (an outage, an evicted set, pages stored before
 * the index existed), the store's own walk (SCAN) instead.
 */
export async function* indexedWalk(
  index: RedisPageIndex,
  prefix: string,
  get: (key: string) => Promise<StoredValue | undefined>,
  scan: () => AsyncIterable<[string, StoredValue]>,
): AsyncGenerator<[string, StoredValue]> {
  const tag = listingTag(prefix);
  const seen = new Set<string>();
  let indexed = false;
  // The pages without a query first, then the query variants (their own set, see page-index).
  for (const kind of ['pages', 'variants'] as const) {
    for (let from = 0; ; from += BATCH) {
      const pages = await index.list(tag, from, BATCH, kind);
      if (pages === undefined || pages.length === 0) break;
      indexed = true;
      const fresh = pages.filter((page) => !seen.has(page.variantKey));
      for (const page of fresh) seen.add(page.variantKey);
      const values = await Promise.all(fresh.map((page) => get(page.variantKey)));
      for (let i = 0; i < fresh.length; i += 1) {
        const value = values[i];
        if (value !== undefined) yield [fresh[i].variantKey, value];
      }
      if (pages.length < BATCH) break;
    }
  }
  if (!indexed) yield* scan();
}
