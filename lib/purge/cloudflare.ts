import { encodePath } from '../request/cache-key';
import { eventKeys } from './keys';
import { type ApiPurgeOptions, checkApiOptions, type Origin } from './options';
import { batches, describeList, isSoft, type PurgeRequest, type Purger, purger } from './send';

/** Options of `cloudflarePurge`. */
export interface CloudflarePurgeOptions extends ApiPurgeOptions {
  /** The zone's id. Required. */
  zoneId: string;
  /** An API token with the Cache Purge permission (sent as `Authorization: Bearer`). Required. */
  token: string;
  /**
   * The site's origins, e.g. `['https://www.example.com']`, to purge paths by URL too: a page
   * by its URL (`files`), a layout by its prefix (`prefixes`) — for copies Cloudflare took
   * before the cache sent path keys. Paths are purged by their path key with or without them.
   */
  origins?: string[];
  /**
   * Targets per API call. Cloudflare's API reference allows 30 tags, prefixes or URLs per call
   * (500 URLs on Enterprise); its purge limits page now says 100 operations per request on
   * every plan. 30 fits both. @default 30
   */
  batchSize?: number;
  /**
   * `mode: 'stale'` invalidates (`invalidate_cache`: kept, marked stale, revalidated with the
   * origin — Cloudflare's soft purge) rather than purges. `false`: always `purge_cache`.
   * @default true
   */
  invalidate?: boolean;
  /** The API's base URL (a test server's, in tests). @default 'https://api.cloudflare.com/client/v4' */
  apiUrl?: string;
}

/** Cloudflare's account id option, batch sizes and API (see `batchSize` above). */
const CLOUDFLARE = {
  id: 'zoneId',
  batchSize: 30,
  maxBatch: 500,
  apiUrl: 'https://api.cloudflare.com/client/v4',
};

/**
 * An `onRevalidate` that purges Cloudflare's cache (with `cdnTags: 'Cache-Tag'`, the default):
 * `POST /zones/{zoneId}/invalidate_cache` for `stale`, `purge_cache` for `expire` and
 * `regenerate`, `{"tags":[…]}` in batches of `batchSize` — a path by its page key
 * (`page:/blog/a`) or layout key (`layout:/blog`), which every cached page carries, then the
 * tags — and, with `origins`, `{"files":[…]}` for pages and `{"prefixes":[…]}` for layouts.
 */
export function cloudflarePurge(options: CloudflarePurgeOptions): Purger {
  const checked = checkApiOptions(options, 'cloudflarePurge', CLOUDFLARE);
  const { id: zoneId, token, origins, batchSize, api } = checked;
  const invalidate = options?.invalidate ?? true;

  return purger('Cloudflare', checked.settings, (event) => {
    const endpoint = isSoft(event.mode) && invalidate ? 'invalidate_cache' : 'purge_cache';
    const url = `${api}/zones/${encodeURIComponent(zoneId)}/${endpoint}`;
    const call = (field: string, items: string[]): PurgeRequest => ({
      url,
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ [field]: items }),
      target: `${endpoint} ${field} ${describeList(items)}`,
      refused: cloudflareRefusal,
    });
    const requests: PurgeRequest[] = [];
    for (const batch of batches(eventKeys(event), batchSize)) requests.push(call('tags', batch));
    const layout = event.type === 'layout';
    const targets = origins.flatMap((origin) =>
      event.paths.map((path) => (layout ? prefixOf(origin, path) : urlOf(origin, path))),
    );
    for (const batch of batches(targets, batchSize)) {
      requests.push(call(layout ? 'prefixes' : 'files', batch));
    }
    return requests;
  });
}

/** Cloudflare answers `{"success":false,"errors":[…]}` when it refused a purge. */
function cloudflareRefusal(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { success?: unknown; errors?: { message?: string }[] };
    if (parsed.success === false) return `refused: ${parsed.errors?.[0]?.message ?? body}`;
  } catch {
    // Not JSON: a 2xx is taken as done.
  }
  return undefined;
}

function urlOf(origin: Origin, path: string): string {
  return `${origin.origin}${encodePath(path)}`;
}

/** A prefix is `host/path`, without the scheme (Cloudflare: purge by prefix). */
function prefixOf(origin: Origin, path: string): string {
  return `${origin.host}${encodePath(path)}`;
}
