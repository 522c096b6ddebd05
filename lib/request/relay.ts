/**
 * How a render of the cache's own is passed on to the visitor whose request missed (README,
 * "What the stored render sees"): its status and headers on the visitor's response, a 304 for
 * the visitor's own validators, and whether it is the visitor's variant at all.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { hopByHop } from '../render/entry';
import { notModified } from './conditionals';
import { headerText } from './eligibility';
import { variantKeyOf } from './lookup';

/**
 * The shared render's status and headers on the visitor's response, as a replay would send
 * them: a header that middleware mounted before `isr()` already set (a request id, CORS) is
 * this request's own and stays; those that describe the page are always the render's; hop-by-hop
 * ones (and those `Connection` names) and the render's `Date` never go (RFC 9110 §7.6.1).
 */
export function relayHead(
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  withCookies = false,
): void {
  res.statusCode = status;
  const hop = hopByHop(headers);
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || hop.has(name)) continue;
    // Consumed here, never sent on: see NOT_STORED in render/entry.ts.
    if (name === 'date' || name === 'surrogate-control' || name === 'cdn-cache-control') continue;
    if (name === 'set-cookie') {
      // Beside the cookies a middleware before isr() set on this response (an A/B split):
      // those are this visitor's own and stay; the render's others are added.
      if (withCookies) {
        const own = cookieNames(res.getHeader('set-cookie'));
        for (const cookie of ([] as string[]).concat(value as string | string[])) {
          if (!own.has(cookieName(cookie))) res.appendHeader('set-cookie', cookie);
        }
      }
      continue;
    }
    if (res.hasHeader(name) && !PAGE_HEADERS.has(name)) continue;
    res.setHeader(name, value);
  }
}

/**
 * Headers that describe the page itself, always the render's on the visitor's response (a
 * Content-Security-Policy nonce must match the one in the body).
 */
const PAGE_HEADERS = new Set([
  'content-type',
  'content-length',
  'content-encoding',
  'content-language',
  'content-location',
  'content-range',
  'content-security-policy',
  'etag',
  'last-modified',
  'vary',
  'cache-control',
]);

/** Whether the headers a page varies on are the same in two requests. */
export function sameVariant(
  vary: readonly string[],
  visitor: IncomingMessage['headers'],
  rendered: Record<string, string>,
): boolean {
  return variantKeyOf('', vary, visitor) === variantKeyOf('', vary, rendered);
}

/** RFC 9110 §13.1.1–2: the visitor's own validators against the page's, answered with a 304. */
export function answeredNotModified(req: IncomingMessage, res: ServerResponse): boolean {
  const etag = headerText(res.getHeader('etag'));
  const lastModified = Date.parse(headerText(res.getHeader('last-modified')));
  if (etag === '' && Number.isNaN(lastModified)) return false;
  if (!notModified(req.headers, etag, Number.isNaN(lastModified) ? undefined : lastModified))
    return false;
  res.statusCode = 304;
  for (const name of ['content-type', 'content-length', 'content-encoding']) res.removeHeader(name);
  return true;
}

function cookieName(setCookie: string): string {
  return setCookie.slice(0, setCookie.indexOf('=')).trim();
}

function cookieNames(header: OutgoingHttpHeaders[string]): Set<string> {
  if (header === undefined) return new Set();
  return new Set(([] as string[]).concat(header as string | string[]).map(cookieName));
}
