import { canonicalUrl, encodePath, layoutTag, pageTag } from '../request/cache-key';
import { cdnTag } from '../request/cdn-tags';

/**
 * The tags of an event as the cache's tag header carries them (percent-encoded where needed,
 * `cdnTag`); a tag no header can carry was never sent, so there is nothing to purge by.
 */
function sentTags(tags: readonly string[]): string[] {
  const out = new Set<string>();
  for (const tag of tags) {
    const encoded = cdnTag(tag);
    if (encoded !== undefined) out.add(encoded);
  }
  return [...out];
}

/**
 * The key a path's pages carry in their CDN tag header, whichever it is (`Cache-Tag`,
 * `Surrogate-Key`, `xkey`): its page key, or its layout key for `type: 'layout'`, named as the
 * cache's path clocks are, so one key reaches every spelling and query variant of the page —
 * and, for a layout, every page below it — as `revalidatePath` does.
 */
function pathKey(path: string, type: 'page' | 'layout' = 'page'): string | undefined {
  const mark = path.search(/[?#]/);
  const bare = mark === -1 ? path : path.slice(0, mark);
  const canonical = canonicalUrl(encodePath(bare), () => true).path;
  return cdnTag(type === 'layout' ? layoutTag(canonical) : pageTag(canonical));
}

/** The keys of an event's paths (`pathKey`), once each, then its tags (`sentTags`). */
export function eventKeys(event: {
  paths: string[];
  tags: string[];
  type?: 'page' | 'layout';
}): string[] {
  const keys = event.paths
    .map((path) => pathKey(path, event.type ?? 'page'))
    .filter((key): key is string => key !== undefined);
  return [...new Set([...keys, ...sentTags(event.tags)])];
}
