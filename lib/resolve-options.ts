import os from 'node:os';
import type { IsrOptions, ResolvedOptions } from './options';
import { type CacheControlBuilder, defaultCacheControl } from './request/cache-control';
import type { CdnTagHeader } from './request/cdn-tags';
import { isStore } from './stores/types';
import { checkSeconds, fail, isNumber, optionalFunction, positive, stringList } from './validate';

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
  'instanceId',
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
  cdnTags: 'Cache-Tag' as 'Cache-Tag' | 'Surrogate-Key' | 'xkey' | false,
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
    fail('isr() options', 'an object', input);
  }
  const given = Object.fromEntries(
    Object.entries(input).filter(([, value]) => value !== undefined),
  ) as IsrOptions;
  const o = { ...DEFAULTS, ...given };

  if (typeof o.store === 'string') {
    if (!/^rediss?:\/\/\S+$/.test(o.store))
      fail('store', 'a redis:// or rediss:// URL when a string', o.store);
  } else if (o.store !== undefined && !isStore(o.store)) {
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
  checkSeconds(o.revalidate, 'revalidate');
  if (typeof o.policyFromHeaders !== 'boolean')
    fail('policyFromHeaders', 'a boolean', o.policyFromHeaders);
  checkSeconds(o.maxStale, 'maxStale');
  checkSeconds(o.staleIfError, 'staleIfError');
  if (o.version !== undefined && (typeof o.version !== 'string' || !VERSION.test(o.version))) {
    fail('version', 'a build id of 1 to 128 visible ASCII characters, like a git sha', o.version);
  }
  const instanceId = 'instanceId' in given ? o.instanceId : `${os.hostname()}:${process.pid}`;
  if (typeof instanceId !== 'string' || instanceId === '' || instanceId.length > 200) {
    fail('instanceId', 'a non-empty string of at most 200 characters', o.instanceId);
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
  if (
    o.cdnTags !== false &&
    o.cdnTags !== 'Cache-Tag' &&
    o.cdnTags !== 'Surrogate-Key' &&
    o.cdnTags !== 'xkey'
  ) {
    fail('cdnTags', '"Cache-Tag", "Surrogate-Key", "xkey" or false', o.cdnTags);
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
    instanceId,
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
    cdnTags: o.cdnTags === false ? false : (o.cdnTags.toLowerCase() as CdnTagHeader),
    onRevalidate: o.onRevalidate,
    metrics: o.metrics,
    silence: [...o.silence],
    logger: o.logger,
    now: o.now,
  };
}

/** A deploy version goes into store keys: visible ASCII, no spaces, bounded. */
const VERSION = /^[\x21-\x7e]{1,128}$/;
