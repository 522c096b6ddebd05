import { encodePath } from '../request/cache-key';
import { eventKeys } from './keys';
import { type ApiPurgeOptions, checkApiOptions } from './options';
import { batches, describeList, isSoft, type PurgeRequest, type Purger, purger } from './send';

/** Options of `fastlyPurge`. */
export interface FastlyPurgeOptions extends ApiPurgeOptions {
  /** The service's id. Required. */
  serviceId: string;
  /** An API token with the `purge_select` scope (sent as `Fastly-Key`). Required. */
  token: string;
  /**
   * The site's origins, e.g. `['https://www.example.com']`, to purge each path's own URL too
   * (`POST /purge/www.example.com/blog/a`, one URL per call): for copies Fastly took before
   * the cache sent path keys. Paths are purged by their path key with or without them.
   */
  origins?: string[];
  /** Surrogate keys per call: Fastly takes up to 256 in one batch purge. @default 256 */
  batchSize?: number;
  /** The API's base URL (a test server's, in tests). @default 'https://api.fastly.com' */
  apiUrl?: string;
}

/** Fastly's account id option, batch sizes and API (see `batchSize` above). */
const FASTLY = { id: 'serviceId', batchSize: 256, maxBatch: 256, apiUrl: 'https://api.fastly.com' };

/**
 * An `onRevalidate` that purges Fastly (with `cdnTags: 'Surrogate-Key'` on the cache):
 * `POST /service/{serviceId}/purge` with `{"surrogate_keys":[…]}` in batches of up to 256 —
 * a path by its page key (`page:/blog/a`) or layout key (`layout:/blog`), which every cached
 * page carries, then the tags — and, with `origins`, `POST /purge/{host}{path}` per path;
 * `Fastly-Soft-Purge: 1` for `mode: 'stale'` (marked stale, not removed), a hard purge for
 * `expire` and `regenerate`.
 */
export function fastlyPurge(options: FastlyPurgeOptions): Purger {
  const checked = checkApiOptions(options, 'fastlyPurge', FASTLY);
  const { id: serviceId, token, origins, batchSize, api } = checked;

  return purger('Fastly', checked.settings, (event) => {
    const soft = isSoft(event.mode);
    const headers: Record<string, string> = {
      'fastly-key': token,
      accept: 'application/json',
      ...(soft ? { 'fastly-soft-purge': '1' } : {}),
    };
    const kind = soft ? 'soft' : 'hard';
    const requests: PurgeRequest[] = [];
    for (const batch of batches(eventKeys(event), batchSize)) {
      requests.push({
        url: `${api}/service/${encodeURIComponent(serviceId)}/purge`,
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ surrogate_keys: batch }),
        target: `${kind} surrogate keys ${describeList(batch)}`,
      });
    }
    for (const origin of origins) {
      for (const path of event.paths) {
        const cached = `${origin.host}${encodePath(path)}`;
        requests.push({
          url: `${api}/purge/${cached}`,
          method: 'POST',
          headers,
          target: `${kind} URL ${cached}`,
        });
      }
    }
    return requests;
  });
}
