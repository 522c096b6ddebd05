import type { IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { MAX_TARGET_LENGTH } from '../invalidation/targets';

/**
 * What may be served from the cache and what may be stored into it, each with the reason
 * that the debug log and the BYPASS decision carry: the README's "What is never cached", and RFC 9111 §3
 * (a shared cache must not store private or Authorization-bearing responses).
 */

export interface RequestRules {
  bypass?: (req: IncomingMessage) => boolean;
  sessionCookies?: readonly string[];
}

/** Why this request is not answered from (or stored into) the cache, or `undefined`. */
export function requestBypassReason(req: IncomingMessage, rules: RequestRules): string | undefined {
  if (req.method !== 'GET' && req.method !== 'HEAD') return `method ${req.method}`;
  // RFC 9111 §3.5: a shared cache does not reuse responses to Authorization-bearing requests.
  if (req.headers.authorization !== undefined) return 'authorization';
  if (rules.sessionCookies !== undefined) {
    const session = sessionCookieIn(req.headers.cookie, rules.sessionCookies);
    if (session !== undefined) return `session cookie ${session}`;
  }
  if (rules.bypass?.(req)) return 'bypass option';
  return undefined;
}

/** Deepest path stored: each segment is one more tag clock per page (`layout:/a/b/…`). */
const MAX_SEGMENTS = 16;
/** Longest path stored, in bytes of the request-target's path. */
const MAX_PATH_BYTES = 1024;

/**
 * Why the page at `url` (the canonical URL, its key's source) must not be rendered for the
 * store, or `undefined`. Asked only when a render would start — a HIT never pays for it: a URL
 * that fails it was never stored.
 * - Longer than `MAX_TARGET_LENGTH` (2 KB, the longest path a revalidation accepts): the URL
 *   names the page in the store, its Vary record and every tag index set it joins, so a 15 KB
 *   query would buy about five times that in Redis. Parameters `ignoreQuery` drops do not
 *   count: they are not in the key.
 * - Too deep or too long a path (`pathTooDeep`).
 * - Carrying the webhook's secret (`carriesSecret`): a load balancer's
 *   `GET /api/revalidate/health?secret=…` behind the cache would otherwise be rendered on the
 *   cache's own request, the secret in its key and lease.
 */
export function unstorableReason(
  url: string,
  carriesSecret: (url: string) => boolean,
): string | undefined {
  if (url.length > MAX_TARGET_LENGTH) return 'URL too long to cache';
  const tooDeep = pathTooDeep(url);
  if (tooDeep !== undefined) return tooDeep;
  if (url.includes('?') && carriesSecret(url)) return 'URL carries the webhook secret';
  return undefined;
}

/**
 * A page holds two tag clocks per path segment in a shared store (its `layout:` prefixes, for
 * `revalidatePath(…, { type: 'layout' })`), named by the path: a catch-all route answering
 * `/a/a/a/…` would let one anonymous request write thousands of keys and megabytes of names.
 * Real pages are nowhere near these bounds; deeper ones go to the app uncached.
 */
function pathTooDeep(url: string): string | undefined {
  const end = url.indexOf('?');
  const length = end === -1 ? url.length : end;
  if (length > MAX_PATH_BYTES) return 'path too long to cache';
  let segments = 0;
  for (let i = 0; i < length; i += 1) {
    if (url.charCodeAt(i) !== 47 /* / */) continue;
    segments += 1;
    if (segments > MAX_SEGMENTS) return 'path too deep to cache';
  }
  return undefined;
}

/** Whether a request carries any cookie at all. */
export function carriesCookies(req: IncomingMessage): boolean {
  const cookie = req.headers.cookie;
  return cookie !== undefined && cookie.trim() !== '';
}

/** The first cookie of `header` whose name matches one of `patterns` (`name`, or `prefix*`). */
export function sessionCookieIn(
  header: string | undefined,
  patterns: readonly string[],
): string | undefined {
  if (header === undefined || header === '') return undefined;
  for (const pair of header.split(';')) {
    const mark = pair.indexOf('=');
    const name = (mark === -1 ? pair : pair.slice(0, mark)).trim();
    if (name === '') continue;
    for (const pattern of patterns) {
      if (pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : name === pattern)
        return name;
    }
  }
  return undefined;
}

export interface ResponseRules {
  statuses: readonly number[];
  contentTypes: readonly string[];
}

/** Request headers a response may not vary on and still be shared. */
const PERSONAL_VARY = new Set(['cookie', 'authorization']);
/** More than this many Vary headers makes too many variants to be worth storing. */
const MAX_VARY = 4;

/** Why this response may not be stored, or `undefined` when it may. */
export function responseUncacheableReason(
  status: number,
  headers: OutgoingHttpHeaders,
  revalidate: number | false,
  rules: ResponseRules,
): string | undefined {
  if (revalidate === 0) return 'revalidate 0';
  if (!rules.statuses.includes(status)) return `status ${status}`;
  if (headers['set-cookie'] !== undefined) return 'set-cookie';
  const cacheControl = headerText(headers['cache-control']).toLowerCase();
  if (cacheControl !== '') {
    for (const directive of cacheControl.split(',')) {
      const name = directive.split('=')[0].trim();
      if (name === 'private' || name === 'no-store' || name === 'no-cache') {
        return `cache-control ${name}`;
      }
    }
  }
  const vary = varyNames(headers);
  if (vary.includes('*')) return 'vary *';
  const personal = vary.find((name) => PERSONAL_VARY.has(name));
  if (personal !== undefined) return `vary ${personal}`;
  if (vary.length > MAX_VARY) return 'vary on too many headers';
  if (!contentTypeAllowed(headerText(headers['content-type']), rules.contentTypes)) {
    return `content-type ${headerText(headers['content-type']) || 'missing'}`;
  }
  return undefined;
}

/**
 * Why a page may not be stored because its render read a forwarded request header that it
 * does not `Vary` on (RFC 9110 §12.5.5): a page shaped by one visitor's `Accept-Language`
 * would be served to all. `Host` is the configured one (or part of the key); Accept-Encoding
 * is the cache's own.
 */
export function unkeyedHeaderReason(
  namesRead: ReadonlySet<string>,
  checked: readonly string[],
  vary: readonly string[],
): string | undefined {
  for (const name of namesRead) {
    if (name === 'host' || name === 'accept-encoding' || !checked.includes(name)) continue;
    if (!vary.includes(name)) return `reads ${name} without Vary`;
  }
  return undefined;
}

/** The request headers a response varies on, lower-case, without Accept-Encoding (ours). */
export function varyNames(headers: OutgoingHttpHeaders): string[] {
  const text = headerText(headers.vary);
  if (text === '') return [];
  const names: string[] = [];
  for (const raw of text.split(',')) {
    const name = raw.trim().toLowerCase();
    if (name !== '' && name !== 'accept-encoding' && !names.includes(name)) names.push(name);
  }
  return names.sort();
}

/** `text/html` matches `text/html`, `text/*` and `*\/*`; parameters are ignored. */
export function contentTypeAllowed(contentType: string, patterns: readonly string[]): boolean {
  const type = contentType.split(';')[0].trim().toLowerCase();
  for (const pattern of patterns) {
    if (pattern === '*/*') return true;
    if (type === '') continue;
    if (pattern.endsWith('/*') ? type.startsWith(pattern.slice(0, -1)) : type === pattern) {
      return true;
    }
  }
  return false;
}

export function headerText(value: string | number | readonly string[] | undefined): string {
  if (value === undefined) return '';
  return Array.isArray(value) ? value.join(', ') : String(value);
}

/** Content codings the cache can turn back into the identity body it stores. */
const DECODABLE = new Set(['', 'identity', 'gzip', 'x-gzip', 'deflate', 'br']);

/** A content coding the cache cannot turn back into the identity body (RFC 9110 §8.4). */
export function codingProblem(headers: OutgoingHttpHeaders): string | undefined {
  const coding = headerText(headers['content-encoding']).trim().toLowerCase();
  return DECODABLE.has(coding) ? undefined : `content-encoding ${coding}`;
}
