import { fail } from '../validate';
import { eventKeys } from './keys';
import { type RetryOptions, retrySettings } from './options';
import { batches, describeList, isSoft, type PurgeRequest, type Purger, purger } from './send';

/** Options of `varnishPurge`. */
export interface VarnishPurgeOptions extends RetryOptions {
  /** Varnish's address, or one per Varnish server, e.g. `http://127.0.0.1:6081`. Required. */
  url: string | string[];
  /** Headers added to each purge request, e.g. a token your VCL checks. */
  headers?: Record<string, string>;
  /**
   * Most bytes of keys in one request's `xkey` header: Varnish refuses a request header over
   * `http_req_hdr_len` (8 KB by default). @default 4096
   */
  maxHeaderBytes?: number;
}

/**
 * An `onRevalidate` that purges Varnish by xkey (with `cdnTags: 'xkey'` on the cache): one
 * `PURGE /` per batch of keys and per server, the keys in an `xkey` header, `xkey-soft: 1`
 * for `mode: 'stale'` (the VCL then calls `xkey.softpurge`, else `xkey.purge`; README:
 * Purging a CDN in front). Tags are purged by their own key, paths by their page key (or
 * layout key), which every spelling and query variant of the page carries.
 */
export function varnishPurge(options: VarnishPurgeOptions): Purger {
  const urls = typeof options?.url === 'string' ? [options.url] : options?.url;
  if (!Array.isArray(urls) || urls.length === 0 || !urls.every(isHttpUrl)) {
    fail('varnishPurge: url', 'an http(s) URL or a list of them', options?.url);
  }
  const settings = retrySettings(options, 'varnishPurge');
  const maxBytes = options.maxHeaderBytes ?? 4096;
  const extra = options.headers ?? {};
  return purger('Varnish', settings, (event) => {
    const keys = eventKeys(event);
    if (keys.length === 0) return [];
    const soft = isSoft(event.mode);
    const requests: PurgeRequest[] = [];
    for (const batch of batches(keys, Infinity, maxBytes)) {
      for (const url of urls) {
        requests.push({
          url: new URL('/', url).href,
          method: 'PURGE',
          headers: { ...extra, xkey: batch.join(' '), ...(soft ? { 'xkey-soft': '1' } : {}) },
          target: `${soft ? 'soft' : 'hard'} xkey ${describeList(batch)} at ${url}`,
        });
      }
    }
    return requests;
  });
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return /^https?:$/.test(new URL(value).protocol);
  } catch {
    return false;
  }
}
