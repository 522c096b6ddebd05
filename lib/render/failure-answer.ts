import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { replay } from '../request/replay';
import { ageOf, type CacheEntry } from '../types';
import type { RenderFailure } from './render-failures';

/** What is known of a failed render when a request is to be answered for it. */
export interface FailedRender {
  /** The failure recorded for the page; without one the caller answers (see `answerFailed`). */
  failure?: RenderFailure;
  /** The failed render's status, when it answered at all (else the failure's error page's). */
  status?: number;
  /** Answered from another request's render (RFC 9211 `collapsed`), not its own. @default true */
  collapsed?: boolean;
}

/**
 * The one answer to a request whose render failed: its page's last good version, `STALE`,
 * while `staleIfError` allows (`fallback`, RFC 5861); else the failure's answer; else — no
 * failure to answer from — nothing: false, and the caller sends the request on to the app.
 */
export function answerFailed(
  engine: Engine,
  req: IncomingMessage,
  res: ServerResponse,
  variantKey: string,
  fallback: CacheEntry | undefined,
  failed: FailedRender,
): boolean {
  const { failure, collapsed = true } = failed;
  if (fallback !== undefined) {
    answerStaleIfError(
      req,
      res,
      engine,
      fallback,
      variantKey,
      failed.status ?? failure?.answer?.status,
    );
    return true;
  }
  if (failure === undefined) return false;
  if (collapsed) {
    // Counted as a MISS here when answered from another request's render; the visitor a
    // render was made for is counted by that render.
    debug('miss: %s answered from its failed render (attempt %d)', variantKey, failure.attempt);
    engine.observer.miss(variantKey);
  }
  const { now, cacheStatus } = engine.options;
  answerFailure(req, res, failure, now(), cacheStatus, collapsed);
  return true;
}

/**
 * Answers a request for a page whose render failed, without rendering: the app's error page when
 * it may be shared, else a short `503 Service Unavailable` (or `504 Gateway Timeout` for a render
 * that ran past `regenerateTimeout`). Either way with `Retry-After` (RFC 9110 §10.2.3, §15.6.4):
 * the seconds until the page is rendered again.
 */
function answerFailure(
  req: IncomingMessage,
  res: ServerResponse,
  failure: RenderFailure,
  now: number,
  cacheStatus: boolean,
  /** Answered from another request's render (RFC 9211 `collapsed`), not its own. */
  collapsed = true,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const retryAfter = String(Math.max(1, Math.ceil((failure.retryAt - now) / 1000)));
  let status: number;
  let body: Buffer;
  let detail: string;
  if (failure.answer !== undefined) {
    ({ status, body } = failure.answer);
    for (const [name, value] of failure.answer.headers) res.setHeader(name, value);
    detail = `fwd-status=${status}`;
  } else {
    status = failure.kind === 'timed-out' ? 504 : 503;
    const title = status === 504 ? '504 Gateway Timeout' : '503 Service Unavailable';
    const why = status === 504 ? 'took too long to render' : 'could not be rendered';
    body = Buffer.from(
      `<!doctype html><title>${title}</title><h1>${title}</h1><p>This page ${why}. Try again in ${retryAfter} s.</p>\n`,
    );
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.setHeader('cache-control', 'no-store');
    detail = `detail="${failure.kind === 'timed-out' ? 'render timed out' : 'render failed'}"`;
  }
  res.setHeader('retry-after', retryAfter);
  // Not cached: the page is a MISS; the answer is the one its failed render gave (collapsed).
  res.setHeader('x-isr-cache', 'MISS');
  if (cacheStatus)
    res.setHeader(
      'cache-status',
      `express-isr; fwd=uri-miss; ${detail}${collapsed ? '; collapsed' : ''}`,
    );
  res.setHeader('content-length', String(body.length));
  res.writeHead(status);
  if (req.method === 'HEAD') res.end();
  else res.end(body);
}

/**
 * RFC 5861 `stale-if-error`: a page past `maxStale` whose render failed is answered with its
 * last good version (`STALE`, `Cache-Status: …; detail="stale-if-error"`) instead of the error,
 * while it is within `staleIfError` (invalidation/freshness.ts). `status` is the failed render's, if it
 * answered at all.
 */
function answerStaleIfError(
  req: IncomingMessage,
  res: ServerResponse,
  engine: Engine,
  page: CacheEntry,
  variantKey: string,
  status: number | undefined,
): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const now = engine.options.now();
  debug('stale: %s served in place of its failed render (stale-if-error)', variantKey);
  engine.observer.stale(variantKey, ageOf(page, now), 'stale-if-error');
  replay(req, res, page, 'STALE', now, engine.options, false, {
    forwarded: status,
    reason: 'stale-if-error',
  });
}
