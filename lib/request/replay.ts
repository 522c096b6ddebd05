import { type IncomingMessage, ServerResponse } from 'node:http';
import { ageOf, type CacheEntry } from '../types';
import type { CacheState } from './cache-control';
import { notModified } from './conditionals';
import { preferredCoding } from './encoding';
import { headFor, prepare, type ReplaySettings, withBody, withoutHeader } from './replay-head';
import type { StateDetail } from './state-header';

export type { ReplaySettings } from './replay-head';

/**
 * Writes a stored entry as the response: its headers, validators, `Date` of generation and
 * `Age` since then (RFC 9111 §5.1), the br/gzip/identity variant the client accepts, a 304
 * for a matching validator, and no body for HEAD. The headers go out in one `writeHead` with a
 * flat array built once per entry and second: a hit does no parsing, no hashing, no
 * compression, and in most cases no header work at all.
 */
export function replay(
  req: IncomingMessage,
  res: ServerResponse,
  entry: CacheEntry,
  state: CacheState,
  now: number,
  settings: ReplaySettings,
  collapsed = false,
  detail?: StateDetail,
): void {
  const p = prepare(entry, settings);
  const age = ageOf(entry, now);
  const head = headFor(p, entry, state, age, collapsed, settings, detail);

  // Headers that middleware mounted before isr() set on this response (a request id, CORS, a
  // nonce) are this request's: the values stored with the page (the first request's) yield.
  const yielded = alreadySet(res, p.yielding);
  if (notModified(req.headers, entry.etag, p.lastModified)) {
    res.removeHeader('content-type');
    writeHead(res, 304, without(withoutContentType(head.common), yielded));
    res.end();
    return;
  }
  let body = entry.body;
  let coding: 'identity' | 'br' | 'gzip' = 'identity';
  if (p.vary !== undefined && (entry.br !== undefined || entry.gzip !== undefined)) {
    const preferred = preferredCoding(req.headers['accept-encoding']);
    if (preferred === 'br' && entry.br !== undefined) {
      body = entry.br;
      coding = 'br';
    } else if (preferred === 'gzip' && entry.gzip !== undefined) {
      body = entry.gzip;
      coding = 'gzip';
    }
  }
  writeHead(res, entry.status, without(withBody(head, coding, body), yielded));
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * One `writeHead` with all the headers when nothing wrapped it (the fast path); otherwise the
 * headers are set one by one first, so that a wrapper that reads them with `getHeader` when the
 * status line goes out (the `on-headers` pattern: compression, response-time…) sees them.
 */
function writeHead(res: ServerResponse, status: number, headers: string[]): void {
  if (res.writeHead === ServerResponse.prototype.writeHead) {
    res.writeHead(status, headers);
    return;
  }
  for (let i = 0; i < headers.length; i += 2) res.setHeader(headers[i], headers[i + 1]);
  res.writeHead(status);
}

/** A 304 describes the page without carrying it (RFC 9110 §15.4.5): no Content-Type. */
function withoutContentType(headers: (string | string[])[]): string[] {
  return withoutHeader(headers, 'content-type') as string[];
}

/** Which of `names` the response already has, or `undefined` for none (the usual case). */
function alreadySet(res: ServerResponse, names: readonly string[]): Set<string> | undefined {
  let set: Set<string> | undefined;
  for (const name of names) {
    if (!res.hasHeader(name)) continue;
    set ??= new Set();
    set.add(name);
  }
  return set;
}

/** `headers` without the names in `names` (the same array when there are none). */
function without(headers: string[], names: Set<string> | undefined): string[] {
  if (names === undefined) return headers;
  const kept: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    if (!names.has(headers[i])) kept.push(headers[i], headers[i + 1]);
  }
  return kept;
}
