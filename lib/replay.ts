import type { IncomingMessage, ServerResponse } from 'node:http';
import { headerText } from './eligibility';
import { preferredCoding } from './encoding';
import { markState } from './state-header';
import type { CacheEntry } from './types';

export type CacheState = 'HIT' | 'STALE' | 'MISS';

/** Builds the `Cache-Control` sent downstream, or `undefined` for none. */
export type CacheControlBuilder = (info: {
  revalidate: number | false;
  age: number;
  state: CacheState;
  /** The app's own Cache-Control, if it set one. */
  appCacheControl: string | undefined;
}) => string | undefined;

/** Upper bound for "forever" in Cache-Control: numbers there must be finite. */
export const ONE_YEAR = 31_536_000;

/**
 * The default Cache-Control for shared caches in front (CDNs): the app's own directives,
 * with `s-maxage` set to the seconds of freshness left and `stale-while-revalidate` to the
 * page's window, so a CDN behaves like this cache does. Browsers ignore `s-maxage`.
 */
export const defaultCacheControl: CacheControlBuilder = ({
  revalidate,
  age,
  state,
  appCacheControl,
}) => {
  const window = revalidate === false ? ONE_YEAR : revalidate;
  const remaining = state === 'STALE' ? 0 : Math.max(0, window - age);
  const own = (appCacheControl ?? '')
    .split(',')
    .map((d) => d.trim())
    .filter((d) => d !== '' && !/^(s-maxage|stale-while-revalidate)\b/i.test(d));
  return [...own, `s-maxage=${remaining}`, `stale-while-revalidate=${window}`].join(', ');
};

/** The options replay follows. */
export interface ReplaySettings {
  cacheControl: CacheControlBuilder | undefined;
  cacheStatus: boolean;
  cdnTags: 'cache-tag' | 'surrogate-key' | false;
}

/** `Cache-Tag` is comma-separated; `Surrogate-Key` is space-separated. */
export function cdnTagValue(
  tags: readonly string[],
  header: 'cache-tag' | 'surrogate-key',
): string {
  return header === 'cache-tag' ? tags.join(',') : tags.join(' ');
}

/** Per-entry work done once, not per hit. */
interface Prepared {
  date: string;
  lastModified: number | undefined;
  vary: string | undefined;
  headers: [string, string | string[]][];
  appCacheControl: string | undefined;
}

const prepared = new WeakMap<CacheEntry, Prepared>();

function prepare(entry: CacheEntry): Prepared {
  let p = prepared.get(entry);
  if (p !== undefined) return p;
  const hasVariants = entry.br !== undefined || entry.gzip !== undefined;
  const appVary = headerText(entry.headers.vary);
  const lastModifiedText = headerText(entry.headers['last-modified']);
  const lastModified = lastModifiedText === '' ? Number.NaN : Date.parse(lastModifiedText);
  p = {
    date: new Date(entry.generatedAt).toUTCString(),
    lastModified: Number.isNaN(lastModified) ? undefined : lastModified,
    vary: hasVariants
      ? appVary
        ? `${appVary}, Accept-Encoding`
        : 'Accept-Encoding'
      : appVary || undefined,
    headers: Object.entries(entry.headers).filter(
      ([name]) => name !== 'vary' && name !== 'cache-control',
    ),
    appCacheControl: headerText(entry.headers['cache-control']) || undefined,
  };
  prepared.set(entry, p);
  return p;
}

/**
 * Writes a stored entry as the response: its headers, validators, `Date` of generation and
 * `Age` since then (RFC 9111 §5.1), the br/gzip/identity variant the client accepts, a 304
 * for a matching validator, and no body for HEAD.
 */
export function replay(
  req: IncomingMessage,
  res: ServerResponse,
  entry: CacheEntry,
  state: CacheState,
  now: number,
  settings: ReplaySettings,
  collapsed = false,
): void {
  const p = prepare(entry);
  const age = Math.max(0, Math.floor((now - entry.generatedAt) / 1000));
  for (const [name, value] of p.headers) res.setHeader(name, value);
  res.setHeader('date', p.date);
  res.setHeader('age', String(age));
  res.setHeader('etag', entry.etag);
  const ttl = entry.revalidate === false ? undefined : Math.max(0, entry.revalidate - age);
  markState(res, state, { ttl, collapsed }, settings.cacheStatus);
  if (settings.cdnTags !== false && entry.tags.length > 0) {
    res.setHeader(settings.cdnTags, cdnTagValue(entry.tags, settings.cdnTags));
  }
  if (p.vary !== undefined) res.setHeader('vary', p.vary);
  const control = settings.cacheControl?.({
    revalidate: entry.revalidate,
    age,
    state,
    appCacheControl: p.appCacheControl,
  });
  if (control !== undefined) res.setHeader('cache-control', control);
  else if (p.appCacheControl !== undefined) res.setHeader('cache-control', p.appCacheControl);

  if (notModified(req, entry.etag, p.lastModified)) {
    res.statusCode = 304;
    res.removeHeader('content-type');
    res.end();
    return;
  }

  let body = entry.body;
  const coding = p.vary?.includes('Accept-Encoding')
    ? preferredCoding(req.headers['accept-encoding'])
    : 'identity';
  if (coding === 'br' && entry.br !== undefined) body = entry.br;
  else if (coding === 'gzip' && entry.gzip !== undefined) body = entry.gzip;
  if (body !== entry.body) res.setHeader('content-encoding', body === entry.br ? 'br' : 'gzip');
  res.statusCode = entry.status;
  res.setHeader('content-length', body.length);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * RFC 9110 §13.1: If-None-Match (weak comparison) wins over If-Modified-Since, which is
 * compared with the page's own Last-Modified only.
 */
export function notModified(
  req: IncomingMessage,
  etag: string,
  lastModified: number | undefined,
): boolean {
  const ifNoneMatch = req.headers['if-none-match'];
  if (ifNoneMatch !== undefined) return etagMatches(ifNoneMatch, etag);
  const ifModifiedSince = req.headers['if-modified-since'];
  if (ifModifiedSince === undefined || lastModified === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && lastModified <= since;
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const opaque = stripWeak(etag);
  return header.split(',').some((candidate) => stripWeak(candidate.trim()) === opaque);
}

function stripWeak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
