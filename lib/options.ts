import type { IncomingMessage } from 'node:http';
import type { MetricsOptions } from './observability/prometheus';
import type { Lock } from './render/lease';
import { type CacheControlBuilder, defaultCacheControl } from './request/replay';
import { isKeyvLike, type KeyvLike } from './stores/keyv';
import type { EntryStore } from './stores/types';
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
   * Where pages are kept: any Keyv instance (any adapter, e.g. `@keyv/redis`), or a
   * `redis://` / `rediss://` URL (needs `keyv` and `@keyv/redis` installed). A store you pass
   * in stays yours: `close()` does not close it; one made from a URL is closed by `close()`.
   * @default a `MemoryStore` bounded to `maxSize` bytes, least recently used evicted first
   */
  store?: KeyvLike | EntryStore | string;
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
   * (Cloudflare, Akamai) or `Surrogate-Key` (Fastly) response header; `false` = none.
   * @default 'Cache-Tag'
   */
  cdnTags?: 'Cache-Tag' | 'Surrogate-Key' | false;
  /**
   * Called after every invalidation (methods, webhook, unsafe methods), to forward it to a
   * CDN's purge API. Its errors are reported, never thrown at the caller.
   */
  onRevalidate?: (event: {
    paths: string[];
    tags: string[];
    mode: RevalidateMode;
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

/** Every option `isr()` knows, to name the ones it does not (a typo is otherwise silent). */
const OPTION_NAMES = [
  'store',
  'l1',
  'lock',
  'maxSize',
  'revalidate',
  'maxStale',
  'staleIfError',
  'version',
  'policyFromHeaders',
  'statuses',
  'contentTypes',
  'ignoreQuery',
  'allowQuery',
  'key',
  'forwardHeaders',
  'host',
  'bypass',
  'sessionCookies',
  'regenerateTimeout',
  'storeTimeout',
  'maxBodySize',
  'compress',
  'cacheControl',
  'invalidateOnUnsafe',
  'app',
  'cacheStatus',
  'cdnTags',
  'onRevalidate',
  'metrics',
  'silence',
  'onError',
  'logger',
  'now',
] as const satisfies readonly (keyof IsrOptions)[];
// Compile-time check that the list is complete: a new option must be added to it.
const everyOptionListed: Exclude<keyof IsrOptions, (typeof OPTION_NAMES)[number]> extends never
  ? true
  : never = true;
void everyOptionListed;

export interface ResolvedOptions {
  /** Option names given to `isr()` that it does not know (warned about: ISR_UNKNOWN_OPTION). */
  unknownOptions: string[];
  store: KeyvLike | EntryStore | string | undefined;
  l1: false | { maxSize: number };
  lock: Lock | undefined;
  maxSize: number;
  revalidate: number | false;
  maxStale: number | false;
  staleIfError: number | false;
  version: string | undefined;
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
  cdnTags: 'cache-tag' | 'surrogate-key' | false;
  onRevalidate: IsrOptions['onRevalidate'];
  metrics: MetricsOptions | undefined;
  silence: string[];
  logger: Pick<Console, 'warn' | 'error'>;
  now: () => number;
}

const DEFAULTS = {
  maxSize: 50 * 1024 * 1024,
  revalidate: 60 as number | false,
  maxStale: 86_400 as number | false,
  staleIfError: 86_400 as number | false,
  policyFromHeaders: true,
  statuses: [200],
  contentTypes: ['text/html'],
  ignoreQuery: ['utm_*', 'fbclid', 'gclid', 'msclkid'],
  forwardHeaders: ['accept', 'accept-language'],
  regenerateTimeout: 30_000,
  storeTimeout: 500,
  maxBodySize: 10 * 1024 * 1024,
  compress: true as boolean | number,
  cacheControl: true as boolean | CacheControlBuilder,
  invalidateOnUnsafe: true,
  cacheStatus: true,
  cdnTags: 'Cache-Tag' as 'Cache-Tag' | 'Surrogate-Key' | false,
  silence: [] as string[],
  logger: console as Pick<Console, 'warn' | 'error'>,
  now: Date.now as () => number,
};

const COMPRESS_THRESHOLD = 1024;

/**
 * Merges user options over the defaults and checks each one. An explicit `undefined` never
 * erases a default; an impossible value throws a `TypeError` that names the option, what it
 * must be and what it got — it is never replaced by a default quietly.
 */
export function resolveOptions(input: IsrOptions = {}): ResolvedOptions {
  if (typeof input !== 'object' || input === null) {
    throw new TypeError(`[express-isr] isr() options must be an object, got ${describe(input)}`);
  }
  const given = Object.fromEntries(
    Object.entries(input).filter(([, value]) => value !== undefined),
  ) as IsrOptions;
  const o = { ...DEFAULTS, ...given };

  if (typeof o.store === 'string') {
    if (!/^rediss?:\/\/\S+$/.test(o.store))
      fail('store', 'a redis:// or rediss:// URL when a string', o.store);
  } else if (o.store !== undefined && !isKeyvLike(o.store)) {
    fail(
      'store',
      'a Keyv instance, a redis:// URL or an object with get, set and delete methods',
      o.store,
    );
  }
  const l1 = o.l1 === undefined || o.l1 === true ? {} : o.l1;
  if (l1 !== false && (typeof l1 !== 'object' || l1 === null))
    fail('l1', 'a boolean or { maxSize }', o.l1);
  if (l1 !== false && l1.maxSize !== undefined) positive('l1.maxSize', l1.maxSize);
  if (
    o.lock !== undefined &&
    (typeof o.lock?.acquire !== 'function' || typeof o.lock?.held !== 'function')
  ) {
    fail('lock', 'an object with acquire(key, ttlMs) and held(key) methods', o.lock);
  }
  positive('maxSize', o.maxSize);
  if (o.revalidate !== false && !(isNumber(o.revalidate) && o.revalidate >= 0)) {
    fail('revalidate', 'a number of seconds >= 0 or false', o.revalidate);
  }
  if (typeof o.policyFromHeaders !== 'boolean')
    fail('policyFromHeaders', 'a boolean', o.policyFromHeaders);
  checkSeconds(o.maxStale, 'maxStale');
  checkSeconds(o.staleIfError, 'staleIfError');
  if (o.version !== undefined && (typeof o.version !== 'string' || !VERSION.test(o.version))) {
    fail('version', 'a build id of 1 to 128 visible ASCII characters, like a git sha', o.version);
  }
  if (
    !Array.isArray(o.statuses) ||
    !o.statuses.every((s) => Number.isInteger(s) && s >= 200 && s < 600)
  ) {
    fail('statuses', 'an array of HTTP status codes', o.statuses);
  }
  stringList('contentTypes', o.contentTypes);
  for (const pattern of o.contentTypes) {
    if (!/^[^/\s]+\/[^/\s]+$/.test(pattern))
      fail('contentTypes', 'media-type patterns like "text/html" or "*/*"', pattern);
  }
  stringList('ignoreQuery', o.ignoreQuery);
  if (o.allowQuery !== undefined) stringList('allowQuery', o.allowQuery);
  optionalFunction('key', o.key);
  stringList('forwardHeaders', o.forwardHeaders);
  if (o.host !== undefined && (typeof o.host !== 'string' || !/^[^\s/?#@]+$/.test(o.host))) {
    fail('host', 'a host name with an optional port, like "www.example.com"', o.host);
  }
  optionalFunction('bypass', o.bypass);
  if (o.sessionCookies !== undefined) {
    stringList('sessionCookies', o.sessionCookies);
    for (const name of o.sessionCookies) {
      // RFC 6265 §4.1.1: a cookie name is a token (no separators, spaces or controls).
      if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
        fail('sessionCookies', 'cookie names like "connect.sid" (a trailing * for a prefix)', name);
    }
  }
  positive('regenerateTimeout', o.regenerateTimeout);
  positive('storeTimeout', o.storeTimeout);
  positive('maxBodySize', o.maxBodySize);
  if (typeof o.compress !== 'boolean' && !(isNumber(o.compress) && o.compress >= 0)) {
    fail('compress', 'a boolean or a number of bytes', o.compress);
  }
  if (typeof o.cacheControl !== 'boolean' && typeof o.cacheControl !== 'function') {
    fail('cacheControl', 'a boolean or a function', o.cacheControl);
  }
  if (typeof o.invalidateOnUnsafe !== 'boolean')
    fail('invalidateOnUnsafe', 'a boolean', o.invalidateOnUnsafe);
  optionalFunction('app', o.app);
  optionalFunction('onError', o.onError);
  if (typeof o.cacheStatus !== 'boolean') fail('cacheStatus', 'a boolean', o.cacheStatus);
  if (o.cdnTags !== false && o.cdnTags !== 'Cache-Tag' && o.cdnTags !== 'Surrogate-Key') {
    fail('cdnTags', '"Cache-Tag", "Surrogate-Key" or false', o.cdnTags);
  }
  optionalFunction('onRevalidate', o.onRevalidate);
  if (o.metrics !== undefined && typeof o.metrics?.registry?.registerMetric !== 'function') {
    fail('metrics', 'an object like { registry } with a prom-client Registry', o.metrics);
  }
  stringList('silence', o.silence);
  if (typeof o.logger?.warn !== 'function' || typeof o.logger?.error !== 'function') {
    fail('logger', 'an object with warn and error methods', o.logger);
  }
  if (typeof o.now !== 'function') fail('now', 'a function returning milliseconds', o.now);

  return {
    unknownOptions: Object.keys(input).filter(
      (name) => !(OPTION_NAMES as readonly string[]).includes(name),
    ),
    store: o.store,
    l1: l1 === false ? false : { maxSize: l1.maxSize ?? DEFAULTS.maxSize },
    lock: o.lock,
    maxSize: o.maxSize,
    revalidate: o.revalidate,
    maxStale: o.maxStale,
    staleIfError: o.staleIfError,
    version: o.version,
    policyFromHeaders: o.policyFromHeaders,
    statuses: [...o.statuses],
    contentTypes: o.contentTypes.map((t) => t.toLowerCase()),
    ignoreQuery: [...o.ignoreQuery],
    allowQuery: o.allowQuery && [...o.allowQuery],
    key: o.key,
    forwardHeaders: o.forwardHeaders.map((h) => h.toLowerCase()),
    unkeyedChecked: o.forwardHeaders
      .map((h) => h.toLowerCase())
      .filter((h) => h === 'accept' || h === 'accept-language'),
    host: o.host,
    bypass: o.bypass,
    sessionCookies: o.sessionCookies && [...o.sessionCookies],
    regenerateTimeout: o.regenerateTimeout,
    storeTimeout: o.storeTimeout,
    maxBodySize: o.maxBodySize,
    compressThreshold:
      o.compress === true ? COMPRESS_THRESHOLD : o.compress === false ? false : o.compress,
    cacheControl:
      o.cacheControl === true
        ? defaultCacheControl
        : o.cacheControl === false
          ? undefined
          : o.cacheControl,
    invalidateOnUnsafe: o.invalidateOnUnsafe,
    app: o.app,
    onError: o.onError,
    cacheStatus: o.cacheStatus,
    cdnTags:
      o.cdnTags === false ? false : (o.cdnTags.toLowerCase() as 'cache-tag' | 'surrogate-key'),
    onRevalidate: o.onRevalidate,
    metrics: o.metrics,
    silence: [...o.silence],
    logger: o.logger,
    now: o.now,
  };
}

/** Checks a number of seconds or `false` (revalidate, maxStale, staleIfError), here or in `res.isr()`. */
export function checkSeconds(value: unknown, where: string): asserts value is number | false {
  if (value !== false && !(isNumber(value) && value >= 0)) {
    fail(where, 'a number of seconds >= 0 or false', value);
  }
}

/** A deploy version goes into store keys: visible ASCII, no spaces, bounded. */
const VERSION = /^[\x21-\x7e]{1,128}$/;

function isNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value);
}

function positive(name: string, value: unknown): void {
  if (!isNumber(value) || value <= 0) fail(name, 'a positive number', value);
}

function stringList(name: string, value: unknown): asserts value is string[] {
  if (!Array.isArray(value) || !value.every((v) => typeof v === 'string' && v !== '')) {
    fail(name, 'an array of non-empty strings', value);
  }
}

function optionalFunction(name: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'function') fail(name, 'a function', value);
}

export function fail(name: string, expected: string, got: unknown): never {
  throw new TypeError(`[express-isr] ${name} must be ${expected}, got ${describe(got)}`);
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint') return String(value); // NaN, Infinity
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
