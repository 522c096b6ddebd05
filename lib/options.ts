import type { IncomingMessage } from 'node:http';
import type { MetricsOptions } from './observability/prometheus';
import type { Lock } from './render/lease';
import type { CacheControlBuilder } from './request/cache-control';
import type { CdnTagHeader } from './request/cdn-tags';
import type { IsrStore } from './stores/types';
import type { RequestHandler, RevalidateMode } from './types';

/** Where a reported error came from. */
export interface ErrorContext {
  phase: 'regenerate' | 'prerender' | 'store' | 'store-write' | 'miss' | 'on-revalidate';
  key?: string;
  /** For `regenerate`: how many attempts in a row have failed. */
  attempt?: number;
  /** For `regenerate`: when (ms since epoch) the next attempt may start. */
  retryAt?: number;
}

/** Options of `isr()`. All are optional. */
export interface IsrOptions {
  /**
   * Where pages are kept: any Keyv instance (any adapter, e.g. `@keyv/redis`), a store of your
   * own implementing {@link IsrStore}, or a `redis://` / `rediss://` URL (needs `keyv` and `@keyv/redis` installed). A store you pass
   * in stays yours: `close()` does not close it; one made from a URL is closed by `close()`.
   * @default a `MemoryStore` bounded to `maxSize` bytes, least recently used evicted first
   */
  store?: IsrStore | string;
  /**
   * With a Redis store: an in-process copy of hot pages in front of Redis, kept coherent by
   * Redis pub/sub (it stops serving while pub/sub is down). `false` turns it off.
   * @default { maxSize: 52428800 } (50 MB) when the store is `@keyv/redis`
   */
  l1?: boolean | { maxSize?: number };
  /**
   * Decides which instance renders a cold or stale page when several share a store. Built in
   * for `@keyv/redis` (a Redis lease); pass your own for another shared store.
   * @default a Redis lease with `@keyv/redis`, else in-process only
   */
  lock?: Lock;
  /**
   * Bytes the default in-memory store may hold (ignored when `store` is given).
   * @default 52428800 (50 MB)
   */
  maxSize?: number;
  /**
   * Seconds a page stays fresh before the next request regenerates it in the background;
   * `false` = only on demand. A route overrides it with `res.isr({ revalidate })`.
   * @default 60
   */
  revalidate?: number | false;
  /**
   * Seconds past the revalidate window (or past an on-demand `stale`) a page may still be
   * served `STALE` while it regenerates; past that, the next request renders it (`MISS`).
   * `false` = no limit. A route overrides it with `res.isr({ maxStale })`.
   * @default 86400 (one day)
   */
  maxStale?: number | false;
  /**
   * Seconds past `maxStale` a page may still be served `STALE` when the render it needs fails
   * (throws, answers 5xx, times out), instead of the error (RFC 5861 `stale-if-error`).
   * `0` = never, `false` = no limit. A route overrides it with `res.isr({ staleIfError })`.
   * @default 86400 (one day)
   */
  staleIfError?: number | false;
  /**
   * The build this process runs (a build id, a git sha). With a shared store, pages rendered by
   * one version are never served as fresh by another: each version stores its own, and a page
   * only another version has is served `STALE` while this one renders its own (README, "Deploying
   * a new version"). Ignored by the memory store, which starts empty with every process.
   * @default undefined
   */
  version?: string;
  /**
   * Names this process among the instances sharing a store: stored on each page it renders
   * (`renderedBy` in `cache.entry()`), on its render leases (`cache.health()` lists them) and in
   * `cache.health()`. A non-empty string of at most 200 characters.
   * @default `${os.hostname()}:${process.pid}`
   */
  instanceId?: string;
  /**
   * Read each page's windows from its own caching headers when the route did not call
   * `res.isr()`: `CDN-Cache-Control`, `Surrogate-Control`, or `Cache-Control`'s `s-maxage`,
   * `stale-while-revalidate`, `stale-if-error` (README, "Caching headers set the policy").
   * `false`: the options and `res.isr()` alone.
   * @default true
   */
  policyFromHeaders?: boolean;
  /** Statuses that may be stored. @default [200] */
  statuses?: number[];
  /** Media-type patterns that may be stored (`text/*`, `*\/*` for all). @default ['text/html'] */
  contentTypes?: string[];
  /**
   * Query parameters left out of the key — and out of the URL the stored render sees.
   * A trailing `*` matches any suffix.
   * @default ['utm_*', 'fbclid', 'gclid', 'msclkid']
   */
  ignoreQuery?: string[];
  /** When set, only these query parameters are part of the key (and seen by the render). */
  allowQuery?: string[];
  /**
   * Builds the key from the request and the canonical URL (path + sorted query). To keep one
   * cache per host: `(req, url) => req.headers.host + url` with `'host'` in `forwardHeaders`.
   * @default (req, url) => url
   */
  key?: (req: IncomingMessage, url: string) => string;
  /**
   * Request headers the render that will be stored may see, besides `Host` (see `host`) and
   * the headers a page's `Vary` names. Lower-case names.
   * @default ['accept', 'accept-language']
   */
  forwardHeaders?: string[];
  /**
   * The `Host` the stored render sees (e.g. `'www.example.com'`), so absolute links in
   * cached pages never carry a host a client made up. Add `'host'` to `forwardHeaders` to
   * pass the client's instead (only when it is part of the key).
   * @default the address the server listens on, e.g. `127.0.0.1:3000`
   */
  host?: string;
  /** Return `true` to let a request skip the cache (`BYPASS`), e.g. logged-in users. */
  bypass?: (req: IncomingMessage) => boolean;
  /**
   * The cookies that make a request personal, e.g. `['connect.sid']` for express-session (a
   * trailing `*` matches any suffix). A request carrying one is never answered from the cache
   * nor rendered for it (`BYPASS`); every other cookie is ignored, so visitors with only
   * analytics or consent cookies get `HIT`s. Unset, a request carrying any cookie gets a stored
   * page only when that page's render never read the Cookie header, and its own render
   * otherwise (README, "Sessions and logged-in users").
   * @default undefined
   */
  sessionCookies?: string[];
  /**
   * Milliseconds a background regeneration may take before it counts as failed (the old page
   * stays). Also how long requests for a cold page wait for the render already running.
   * @default 30000
   */
  regenerateTimeout?: number;
  /** Milliseconds a store call may take before the request fails open. @default 500 */
  storeTimeout?: number;
  /** Pages larger than this many bytes are passed through, never stored. @default 10485760 */
  maxBodySize?: number;
  /**
   * Make br and gzip variants once, at store time, for pages of at least this many bytes
   * (`true` = 1024); `false` = never.
   * @default true
   */
  compress?: boolean | number;
  /**
   * The `Cache-Control` sent with cached pages for CDNs in front: `true` = the app's own
   * directives plus `s-maxage=<seconds left>, stale-while-revalidate=<window>`;
   * `false` = leave the app's header as it is; or a function that builds it.
   * @default true
   */
  cacheControl?: boolean | CacheControlBuilder;
  /**
   * A successful POST, PUT, PATCH or DELETE to a URL marks that page stale (RFC 9111 §4.4).
   * @default true
   */
  invalidateOnUnsafe?: boolean;
  /**
   * The app regenerations are dispatched through. Found by itself with Express
   * (`req.app`, up to the top-level app); pass it for Connect or plain `node:http`.
   */
  app?: RequestHandler;
  /** Send the standard `Cache-Status` header (RFC 9211) beside `x-isr-cache`. @default true */
  cacheStatus?: boolean;
  /**
   * Send the page's tags to a CDN in front, so it can purge by the same tags: in a `Cache-Tag`
   * (Cloudflare, Akamai), `Surrogate-Key` (Fastly) or `xkey` (Varnish's xkey vmod, with the
   * page's path keys first) response header; `false` = none.
   * @default 'Cache-Tag'
   */
  cdnTags?: 'Cache-Tag' | 'Surrogate-Key' | 'xkey' | false;
  /**
   * Called after every invalidation (methods, webhook, unsafe methods), to forward it to a
   * CDN's purge API. Its errors are reported, never thrown at the caller.
   */
  onRevalidate?: (event: {
    paths: string[];
    tags: string[];
    mode: RevalidateMode;
    /** How `paths` match: one page (every query variant) or everything below each. */
    type: 'page' | 'layout';
  }) => void | Promise<void>;
  /** Prometheus metrics through prom-client, registered on your registry (see README). */
  metrics?: MetricsOptions;
  /** Warning codes not to print, e.g. `['ISR_SHORT_REVALIDATE']` (see README, Warnings). */
  silence?: string[];
  /** Receives errors that clients never see: failed regenerations, store outages. */
  onError?: (error: Error, context: ErrorContext) => void;
  /** Where warnings and default error reports go. @default console */
  logger?: Pick<Console, 'warn' | 'error'>;
  /** The clock, in ms since epoch; inject one in tests. @default Date.now */
  now?: () => number;
}

export interface ResolvedOptions {
  /** Option names given to `isr()` that it does not know (warned about: ISR_UNKNOWN_OPTION). */
  unknownOptions: string[];
  store: IsrStore | string | undefined;
  l1: false | { maxSize: number };
  lock: Lock | undefined;
  maxSize: number;
  revalidate: number | false;
  maxStale: number | false;
  staleIfError: number | false;
  version: string | undefined;
  instanceId: string;
  policyFromHeaders: boolean;
  statuses: number[];
  contentTypes: string[];
  ignoreQuery: string[];
  allowQuery: string[] | undefined;
  key: ((req: IncomingMessage, url: string) => string) | undefined;
  forwardHeaders: string[];
  /**
   * The forwarded headers a page may not read without `Vary` on them and still be stored:
   * `Accept` and `Accept-Language` when forwarded, which any client chooses. Others you list in
   * `forwardHeaders` are yours to key (with `key`) or to trust (a proxy's X-Forwarded-Proto).
   */
  unkeyedChecked: string[];
  host: string | undefined;
  bypass: ((req: IncomingMessage) => boolean) | undefined;
  sessionCookies: string[] | undefined;
  regenerateTimeout: number;
  storeTimeout: number;
  maxBodySize: number;
  compressThreshold: number | false;
  cacheControl: CacheControlBuilder | undefined;
  invalidateOnUnsafe: boolean;
  app: RequestHandler | undefined;
  onError: ((error: Error, context: ErrorContext) => void) | undefined;
  cacheStatus: boolean;
  cdnTags: CdnTagHeader | false;
  onRevalidate: IsrOptions['onRevalidate'];
  metrics: MetricsOptions | undefined;
  silence: string[];
  logger: Pick<Console, 'warn' | 'error'>;
  now: () => number;
}
