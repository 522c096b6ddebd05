import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request as the middleware sees it: Node's, plus what Express or Connect add. */
export type IsrRequest = IncomingMessage & {
  originalUrl?: string;
  app?: unknown;
};

/** A response as the middleware sees it: Node's, plus `res.isr()` once the middleware ran. */
export type IsrResponse = ServerResponse & {
  isr?: (config: ResponseIsrConfig) => void;
};

/** A Connect/Express-style request handler: what regeneration dispatches through. */
export type RequestHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/** What a route may say about its own response with `res.isr(...)`. */
export interface ResponseIsrConfig {
  /**
   * Seconds this page stays fresh; `false` = only on-demand revalidation;
   * `0` = do not cache this response at all. The last call wins.
   */
  revalidate?: number | false;
  /**
   * Seconds past the window this page may still be served `STALE`; `false` = no limit.
   * Overrides the `maxStale` option.
   */
  maxStale?: number | false;
  /**
   * Seconds past `maxStale` this page may still be served when its render fails (RFC 5861);
   * `0` = never, `false` = no limit. Overrides the `staleIfError` option.
   */
  staleIfError?: number | false;
  /** Tags for `revalidateTag`. They accumulate over calls. */
  tags?: string[];
}

/** How `revalidatePath` / `revalidateTag` invalidate. */
export type RevalidateMode = 'stale' | 'expire' | 'regenerate';

/** One cached page (one variant of one URL). */
export interface CacheEntry {
  /** HTTP status of the stored response (one of the `statuses` option). */
  status: number;
  /** Response headers to replay, lower-case names; never hop-by-hop, Date, Set-Cookie. */
  headers: Record<string, string | string[]>;
  /** The identity-encoded body. */
  body: Buffer;
  /** gzip variant, made once at store time for pages over the threshold. */
  gzip?: Buffer;
  /** Brotli variant, made once at store time for pages over the threshold. */
  br?: Buffer;
  /** The app's own ETag, or a strong one made from the body. */
  etag: string;
  /** When the render that produced this entry started (ms since epoch, from `now()`). */
  generatedAt: number;
  /** Seconds of freshness, or `false` for on-demand only. */
  revalidate: number | false;
  /** Seconds it may be served `STALE` once stale, or `false` for no limit. */
  maxStale: number | false;
  /** Seconds past `maxStale` it may be served when its render fails, or `false` for no limit. */
  staleIfError: number | false;
  /** The deploy `version` that rendered it, when one was given with a shared store. */
  version?: string;
  /**
   * When it was written to a shared store (ms, `now()`): the Redis records of its tag clocks
   * must be at least this old, or one was evicted meanwhile (see stores/redis/tag-clocks.ts).
   */
  storedAt?: number;
  /** Tags given by the route (`res.isr`, `Cache-Tag`, `Surrogate-Key`). */
  tags: string[];
  /** The canonical URL (path + normalised query) the entry was rendered from. */
  url: string;
  /** The request headers the render saw: regeneration replays exactly these. */
  requestHeaders: Record<string, string>;
  /**
   * Whether the render looked for the Cookie header (it never carries one). Such a page is
   * never replayed to a request that carries cookies, unless `sessionCookies` names the
   * personal ones. Absent (entries stored by an older version) counts as true.
   */
  readsCookies?: boolean;
  /** Rendered as over TLS (the visitor's connection was): regenerations render it the same. */
  secure?: boolean;
  /** The `instanceId` of the process that rendered it (absent in entries stored before it existed). */
  renderedBy?: string;
}

/**
 * Stored at a URL's key when its responses vary on request headers: the entries
 * themselves live at one key per variant (RFC 9111 §4.1).
 */
export interface VaryRecord {
  vary: string[];
}

/**
 * Stored beside the pages when a deploy `version` is set: which version last stored a page of
 * this URL, for a new version to serve it `STALE` while it renders its own.
 */
export interface VersionPointer {
  latest: string;
}

export type StoredValue = CacheEntry | VaryRecord | VersionPointer;

/** A page, not one of the small records stored beside pages. */
export function isEntry(value: StoredValue | undefined): value is CacheEntry {
  return value !== undefined && 'body' in value;
}

/** A page's age in whole seconds (RFC 9111 §5.1), never negative. */
export function ageOf(entry: CacheEntry, now: number): number {
  return Math.max(0, Math.floor((now - entry.generatedAt) / 1000));
}
