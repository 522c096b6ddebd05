/**
 * `express-isr/purge`: `onRevalidate` functions that purge the CDN or Varnish in front of the
 * cache, so one revalidation refreshes both layers (README: Purging a CDN in front).
 */
export { type CloudflarePurgeOptions, cloudflarePurge } from './cloudflare';
export { type FastlyPurgeOptions, fastlyPurge } from './fastly';
export type { RetryOptions } from './options';
export { PurgeError, type PurgeEvent, type PurgeFailure, type Purger } from './send';
export { type VarnishPurgeOptions, varnishPurge } from './varnish';
