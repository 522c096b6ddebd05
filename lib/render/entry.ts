import { createHash } from 'node:crypto';
import type { OutgoingHttpHeaders } from 'node:http';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { headerText } from '../request/eligibility';
import type { CacheEntry } from '../types';
import type { Captured } from './capture';
import type { PagePolicy } from './response-config';

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);
const decoders: Record<string, (body: Buffer) => Promise<Buffer>> = {
  gzip: promisify(zlib.gunzip),
  'x-gzip': promisify(zlib.gunzip),
  deflate: promisify(zlib.inflate),
  br: promisify(zlib.brotliDecompress),
};

/**
 * Headers never stored, besides the hop-by-hop ones (`hopByHop`): those the replay computes itself
 * (Date, Age, Content-Length, Content-Encoding, ETag, our own x-isr-cache) and Set-Cookie
 * (a response that sets one is never stored at all; this is a second lock on that door).
 */
const NOT_STORED = new Set([
  'date',
  'age',
  'content-length',
  'content-encoding',
  'etag',
  'set-cookie',
  'x-isr-cache',
  // Addressed to surrogates, this cache among them, which consume it (Edge Architecture 1.0):
  // the window it set is in the Cache-Control sent on.
  'surrogate-control',
  // The same for CDN-Cache-Control (RFC 9213): passed on as the app sent it, it would tell a
  // CDN in front another window than the one stored (after res.isr() or an on-demand `stale`);
  // the Cache-Control sent on carries the stored one.
  'cdn-cache-control',
]);

export interface EntryContext extends Omit<PagePolicy, 'tags'> {
  url: string;
  requestHeaders: Record<string, string>;
  generatedAt: number;
  tags: readonly string[];
  /** The deploy version rendering it (shared stores only). */
  version: string | undefined;
  /** Pages at least this large get br and gzip variants; `false` = never. */
  compressThreshold: number | false;
  /** The render looked for the Cookie header. */
  readsCookies: boolean;
  /** Rendered as over TLS. */
  secure: boolean;
}

/** Turns a finished, cacheable capture into an entry: identity body, variants, validators. */
export async function buildEntry(captured: Captured, context: EntryContext): Promise<CacheEntry> {
  const body = await identityBody(captured);
  const headers = storedHeaders(captured.headers);
  const etag = headerText(captured.headers.etag) || strongEtag(body);
  const entry: CacheEntry = {
    status: captured.status,
    headers,
    body,
    etag,
    generatedAt: context.generatedAt,
    revalidate: context.revalidate,
    maxStale: context.maxStale,
    staleIfError: context.staleIfError,
    tags: mergeTags(context.tags, captured.headers),
    url: context.url,
    requestHeaders: context.requestHeaders,
    readsCookies: context.readsCookies,
  };
  if (context.secure) entry.secure = true;
  if (context.version !== undefined) entry.version = context.version;
  if (context.compressThreshold !== false && body.length >= context.compressThreshold) {
    // zlib's async API runs on the thread pool: compression never blocks the event loop.
    const [gz, br] = await Promise.all([
      gzip(body, { level: 9 }),
      brotli(body, {
        params: {
          [zlib.constants.BROTLI_PARAM_QUALITY]: brotliQuality(body.length),
          [zlib.constants.BROTLI_PARAM_SIZE_HINT]: body.length,
        },
      }),
    ]);
    if (gz.length < body.length) entry.gzip = gz;
    if (br.length < body.length) entry.br = br;
  }
  return entry;
}

/**
 * Brotli's best quality (11) costs ~6 ms of CPU for a 200 KB page against ~0.3 ms at 9, for a
 * few percent of size (bench/RESULTS.md, hits/stale): 11 only for typical pages.
 */
function brotliQuality(bytes: number): number {
  if (bytes <= 64 * 1024) return 11;
  return bytes <= 1024 * 1024 ? 9 : 5;
}

/** A strong validator from the body: the same on the MISS and on every replay. */
export function strongEtag(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`;
}

/** The response headers worth replaying, lower-case names. */
export function storedHeaders(headers: OutgoingHttpHeaders): Record<string, string | string[]> {
  const hop = hopByHop(headers);
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || NOT_STORED.has(lower) || hop.has(lower)) continue;
    kept[lower] = Array.isArray(value) ? value.map(String) : String(value);
  }
  return kept;
}

/** Hop-by-hop headers (RFC 9110 §7.6.1): they concern one connection, never a copy. */
const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
];

/** The hop-by-hop headers of a response: the fixed ones and those its `Connection` names. */
export function hopByHop(headers: OutgoingHttpHeaders): Set<string> {
  const names = new Set(HOP_BY_HOP);
  for (const name of headerText(headers.connection).split(',')) {
    const trimmed = name.trim().toLowerCase();
    if (trimmed !== '') names.add(trimmed);
  }
  return names;
}

/** Tags from `res.isr`, plus those a route set for CDNs in `Cache-Tag` / `Surrogate-Key`. */
export function mergeTags(tags: readonly string[], headers: OutgoingHttpHeaders): string[] {
  const all = new Set(tags);
  for (const tag of headerText(headers['cache-tag']).split(','))
    if (tag.trim()) all.add(tag.trim());
  for (const tag of headerText(headers['surrogate-key']).split(' '))
    if (tag.trim()) all.add(tag.trim());
  return [...all];
}

/**
 * A `compression()` mounted after the cache hands it encoded bytes even though the stored
 * render asked for identity; decode them so the entry holds one canonical body.
 */
async function identityBody(captured: Captured): Promise<Buffer> {
  const coding = headerText(captured.headers['content-encoding']).trim().toLowerCase();
  if (coding === '' || coding === 'identity') return captured.body;
  const decode = decoders[coding];
  if (decode === undefined) throw new Error(`cannot store content-encoding ${coding}`);
  return decode(captured.body);
}
