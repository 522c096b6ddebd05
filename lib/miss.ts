import type { IncomingMessage } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { type Captured, captureResponse } from './capture';
import { setCdnTagHeader } from './cdn-tags';
import { checkRevalidate } from './checks';
import { headerText, responseUncacheableReason, varyNames } from './eligibility';
import type { Engine } from './engine';
import { buildEntry, strongEtag } from './entry';
import { notModified } from './replay';
import { debug } from './report';
import { responseConfig } from './response-config';
import { sharedRequestHeaders, useSharedHeaders } from './shared-request';
import { markState } from './state-header';
import type { CacheEntry, IsrRequest, IsrResponse } from './types';

export interface MissResult {
  /** The page, without br/gzip variants yet: shareable with requests that waited for it. */
  entry: CacheEntry | undefined;
  /** Settles once the full entry (with variants) is in the store. */
  stored: Promise<void> | undefined;
  /** The response as captured, when it was not stored (to tell a failed render from a personal one). */
  response?: Captured;
}

export interface MissTarget {
  /** The URL's key. */
  key: string;
  /** The canonical URL the render is given. */
  url: string;
  /** Headers the URL's responses are known to vary on. */
  vary: string[];
}

/**
 * Renders a missing page through the rest of the middleware chain, streaming it to this
 * client while a copy is kept. Resolves once the response finished: with the entry when it
 * proved cacheable (before its br/gzip variants are made, so that waiting requests are not
 * held up by compression) and the store still under way, or with no entry when it must not
 * be shared.
 */
export function renderMiss(
  engine: Engine,
  req: IsrRequest,
  res: IsrResponse,
  next: (err?: unknown) => void,
  target: MissTarget,
): Promise<MissResult> {
  const { options } = engine;
  const generatedAt = engine.renderStart();
  // The client's validators are answered here, against the page's final ETag; the render
  // itself must not see them, or it could answer 304 with no body to store (TRAPS.md).
  const clientHeaders = req.headers;
  const requestHeaders = sharedRequestHeaders(
    req,
    options.forwardHeaders,
    target.vary,
    options.host,
  );
  useSharedHeaders(req, requestHeaders);
  // The render is given the canonical URL: what is stored under a key is what the app
  // answers for exactly that key (no spelling of a URL can plant another page under it).
  const mounted = req.originalUrl !== undefined && req.originalUrl !== req.url;
  req.url = mounted ? engine.canonical(req.url ?? '/').url : target.url;
  if (req.originalUrl !== undefined) req.originalUrl = target.url;
  reparseQuery(req);
  // HEAD is rendered as GET so the body can be kept; Node sends no body to a HEAD client.
  if (req.method === 'HEAD') req.method = 'GET';

  const captured = captureResponse(res, {
    maxBodySize: options.maxBodySize,
    abandonAfterMs: options.regenerateTimeout,
    beforeHeaders(wholeBody) {
      const { revalidate, tags } = responseConfig(res, options.revalidate);
      const reason = responseUncacheableReason(
        res.statusCode,
        res.getHeaders(),
        revalidate,
        options,
      );
      if (reason !== undefined) {
        engine.noteUncacheable(target.url, reason);
        markState(res, 'BYPASS', { reason }, options.cacheStatus);
        return undefined;
      }
      engine.observer.miss(target.key);
      markState(res, 'MISS', { stored: true }, options.cacheStatus);
      if (options.cdnTags !== false) {
        setCdnTagHeader(res, tags, options.cdnTags, target.url, engine);
      }
      if (!res.hasHeader('etag') && wholeBody !== undefined)
        res.setHeader('etag', strongEtag(wholeBody));
      const control = options.cacheControl?.({
        revalidate,
        age: 0,
        state: 'MISS',
        appCacheControl: headerText(res.getHeader('cache-control')) || undefined,
      });
      if (control !== undefined) res.setHeader('cache-control', control);
      const etag = headerText(res.getHeader('etag'));
      const lastModified = Date.parse(headerText(res.getHeader('last-modified')));
      if (
        wholeBody !== undefined &&
        etag !== '' &&
        notModified(
          { headers: clientHeaders } as IncomingMessage,
          etag,
          Number.isNaN(lastModified) ? undefined : lastModified,
        )
      ) {
        res.statusCode = 304;
        for (const name of ['content-type', 'content-length', 'transfer-encoding'])
          res.removeHeader(name);
        return 'not-modified';
      }
      return undefined;
    },
  });
  next();

  return captured.then(async (result) => {
    const { revalidate, tags } = responseConfig(res, options.revalidate);
    const reason =
      result.incomplete ??
      responseUncacheableReason(result.status, result.headers, revalidate, options);
    if (reason !== undefined) {
      debug('miss: %s not stored (%s)', target.url, reason);
      return { entry: undefined, stored: undefined, response: result };
    }
    checkRevalidate(engine, revalidate, `res.isr({ revalidate }) on ${target.url}`);
    const context = { url: target.url, requestHeaders, generatedAt, revalidate, tags };
    const entry = await buildEntry(result, { ...context, compressThreshold: false });
    const vary = varyNames(result.headers);
    // The br/gzip variants are made on the loop's next turn, once the requests that waited
    // for this render have been answered: zlib's thread pool would compete with them for CPU.
    const stored = nextTurn()
      .then(() => buildEntry(result, { ...context, compressThreshold: options.compressThreshold }))
      .then(async (full) => {
        await engine.save(target.key, full, vary);
      });
    return { entry, stored };
  });
}

/**
 * Express 4 parses `req.query` once, before any middleware runs, into an own property; after
 * the URL was made canonical it must be parsed again with the app's own parser, or the render
 * would still see the ignored parameters. (Express 5's `req.query` is a getter over `req.url`.)
 */
function reparseQuery(req: IsrRequest): void {
  const own = Object.getOwnPropertyDescriptor(req, 'query');
  const app = req.app as { get?: (name: string) => unknown } | undefined;
  const parse = typeof app?.get === 'function' ? app.get('query parser fn') : undefined;
  if (own === undefined || !own.writable || typeof parse !== 'function') return;
  const url = req.url ?? '';
  const mark = url.indexOf('?');
  (req as { query?: unknown }).query = parse(mark === -1 ? '' : url.slice(mark + 1));
}

/** Whether a cached variant may answer this request: every header it varies on matches. */
export function variantMatches(entry: CacheEntry, headers: IncomingMessage['headers']): boolean {
  for (const name of varyNames(entry.headers)) {
    const value = headers[name];
    const text = (Array.isArray(value) ? value.join(', ') : (value ?? ''))
      .trim()
      .replace(/\s+/g, ' ');
    const seen = (entry.requestHeaders[name] ?? '').trim().replace(/\s+/g, ' ');
    if (text !== seen) return false;
  }
  return true;
}
