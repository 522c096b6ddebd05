/**
 * The response head of a stored page, computed once per entry and reused by every replay of it:
 * its stored headers and validators, its CDN tag headers (encoded and capped by the same rules
 * as the MISS answer, cdn-tags.ts), its `Vary`, and the `Cache-Control` sent on
 * (cache-control.ts). Only what depends on the age and state is built again, at most once a
 * second.
 */
import { warnOnce } from '../observability/warnings';
import type { CacheEntry } from '../types';
import { type CacheControlBuilder, type CacheState, downstreamCacheControl } from './cache-control';
import { type CdnTagHeader, cdnTagValue, headerTags, planCdnTags, warnCdnTags } from './cdn-tags';
import { headerText } from './eligibility';
import { cacheStatusValue, type StateDetail } from './state-header';

/** The options replay follows. */
export interface ReplaySettings {
  cacheControl: CacheControlBuilder | undefined;
  cacheStatus: boolean;
  cdnTags: CdnTagHeader | false;
  /** Where the tag header's coded warnings go (the cache's options); none when absent. */
  logger?: Pick<Console, 'warn'>;
  silence?: readonly string[];
}

/** Per-entry work done once, not per hit. */
export interface Prepared {
  /** The stored headers and the entry's validators, as `[name, value, name, value, …]`. */
  fixed: (string | string[])[];
  lastModified: number | undefined;
  vary: string | undefined;
  appCacheControl: string | undefined;
  /** Tags as each CDN header wants them (`undefined` when none can be sent). */
  cacheTag: string | undefined;
  surrogateKey: string | undefined;
  /** For Varnish's xkey: the page's path keys, then its tags (always some). */
  xkey: string | undefined;
  /** The names of the app's stored headers that yield to the same header set before the replay. */
  yielding: string[];
  /** The header list last sent: every hit within the same second reuses it as it is. */
  last: Head | undefined;
}

/** The full header list for one state, age and cache's settings (`undefined` until needed). */
export interface Head {
  state: CacheState;
  age: number;
  collapsed: boolean;
  settings: ReplaySettings;
  /** Everything but the body's own headers: what a 304 is built from. */
  common: (string | string[])[];
  /** `common` plus Content-Encoding and Content-Length, for each body. */
  identity: string[] | undefined;
  br: string[] | undefined;
  gzip: string[] | undefined;
}

const prepared = new WeakMap<CacheEntry, Prepared>();

/** Stored headers that describe the stored body: always the entry's own on a replay. */
const DESCRIBES_BODY = new Set([
  'content-security-policy', // its nonce is the one in the stored body
  'content-type',
  'content-language',
  'content-location',
  'last-modified',
  'vary',
  'cache-control',
]);

/** The entry's per-entry head work, done on its first replay. */
export function prepare(entry: CacheEntry, settings: ReplaySettings): Prepared {
  let p = prepared.get(entry);
  if (p !== undefined) return p;
  // Encoded and capped once per entry, by the same rules as the MISS (cdn-tags.ts).
  const plan = planCdnTags(headerTags(entry.url, entry.tags));
  const { logger, silence } = settings;
  if (settings.cdnTags !== false && logger !== undefined) {
    warnCdnTags(plan, entry.url, {
      warn: (code, message) => warnOnce(logger, code, message, silence),
    });
  }
  const hasVariants = entry.br !== undefined || entry.gzip !== undefined;
  const appVary = headerText(entry.headers.vary);
  const lastModifiedText = headerText(entry.headers['last-modified']);
  const lastModified = lastModifiedText === '' ? Number.NaN : Date.parse(lastModifiedText);
  const fixed: (string | string[])[] = [];
  for (const [name, value] of Object.entries(entry.headers)) {
    if (name !== 'vary' && name !== 'cache-control') fixed.push(name, value);
  }
  fixed.push('date', new Date(entry.generatedAt).toUTCString(), 'etag', entry.etag);
  p = {
    fixed,
    lastModified: Number.isNaN(lastModified) ? undefined : lastModified,
    vary: hasVariants
      ? appVary
        ? `${appVary}, Accept-Encoding`
        : 'Accept-Encoding'
      : appVary || undefined,
    appCacheControl: headerText(entry.headers['cache-control']) || undefined,
    cacheTag: cdnTagValue(plan, 'cache-tag'),
    surrogateKey: cdnTagValue(plan, 'surrogate-key'),
    xkey: cdnTagValue(plan, 'xkey'),
    yielding: Object.keys(entry.headers).filter((name) => !DESCRIBES_BODY.has(name)),
    last: undefined,
  };
  prepared.set(entry, p);
  return p;
}

/**
 * The headers for this state and age. Only `Age`, the state and what is derived from them
 * (Cache-Status's ttl, `s-maxage`) change, at most once a second: the list is built once for
 * each, and a herd of waiters or a run of hits shares one array (Node only reads it).
 */
export function headFor(
  p: Prepared,
  entry: CacheEntry,
  state: CacheState,
  age: number,
  collapsed: boolean,
  settings: ReplaySettings,
  /** A rare answer's own `Cache-Status` detail (stale-if-error): its head is not kept. */
  detail?: StateDetail,
): Head {
  const last = p.last;
  if (
    detail === undefined &&
    last !== undefined &&
    last.age === age &&
    last.state === state &&
    last.collapsed === collapsed &&
    last.settings === settings
  ) {
    return last;
  }
  const tags =
    settings.cdnTags === 'cache-tag'
      ? p.cacheTag
      : settings.cdnTags === 'surrogate-key'
        ? p.surrogateKey
        : settings.cdnTags === 'xkey'
          ? p.xkey
          : undefined;
  // The app's own tag header, if it set one, is already in `tags` (and sent once, below,
  // encoded and capped); when none of its tags can be sent, it is not sent as it was either.
  const common =
    settings.cdnTags !== false ? withoutHeader(p.fixed, settings.cdnTags) : p.fixed.slice();
  common.push('age', String(age), 'x-isr-cache', state);
  if (settings.cacheStatus) {
    const ttl = entry.revalidate === false ? undefined : Math.max(0, entry.revalidate - age);
    // A MISS replayed from an entry (shared from a render this request waited for, or stored
    // by another instance) forwards what is stored: `stored`, like the render's own MISS.
    const stored = state === 'MISS';
    common.push('cache-status', cacheStatusValue(state, detail ?? { ttl, collapsed, stored }));
  }
  if (tags !== undefined && settings.cdnTags !== false) common.push(settings.cdnTags, tags);
  if (p.vary !== undefined) common.push('vary', p.vary);
  const control = downstreamCacheControl(
    settings.cacheControl,
    entry,
    age,
    state,
    p.appCacheControl,
  );
  if (control !== undefined) common.push('cache-control', control);
  const head: Head = {
    state,
    age,
    collapsed,
    settings,
    common,
    identity: undefined,
    br: undefined,
    gzip: undefined,
  };
  if (detail === undefined) p.last = head;
  return head;
}

/** `head.common` with the headers of the body sent (built once per head and body). */
export function withBody(head: Head, coding: 'identity' | 'br' | 'gzip', body: Buffer): string[] {
  let headers = head[coding];
  if (headers === undefined) {
    headers = head.common.slice() as string[];
    if (coding !== 'identity') headers.push('content-encoding', coding);
    headers.push('content-length', String(body.length));
    head[coding] = headers;
  }
  return headers;
}

/** A flat `[name, value, …]` list without the header `name` (lower case). */
export function withoutHeader(headers: (string | string[])[], name: string): (string | string[])[] {
  const kept: (string | string[])[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (headers[i] !== name) kept.push(headers[i], headers[i + 1]);
  }
  return kept;
}
