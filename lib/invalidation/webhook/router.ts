import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HealthReport } from '../../observability/health';
import type { EntriesQuery, EntryInfo } from '../../observability/inspect';
import { PROTECT_SECRET } from '../../observability/redact';
import type { RevalidationResult } from '../revalidator';
import type { RevalidatePathOptions, RevalidateRequest, RevalidateTagOptions } from '../targets';
import { bearerOf, digest, signatureMatches } from './auth';
import { collectInput, HttpError, readBody, safely } from './input';
import { isReading, read } from './readings';
import { checkRouterOptions } from './router-options';

/** What the router needs from the cache: the two methods of the `isr()` middleware. */
export interface Revalidatable {
  revalidatePath(path: string, options?: RevalidatePathOptions): Promise<void>;
  revalidateTag(tag: string, options?: RevalidateTagOptions): Promise<void>;
  /**
   * When present (as on `isr()`), used to record a call's targets as one invalidation; what
   * it resolves with (`regenerated`, `failed`, `pending`, `purge`) goes into the answer.
   */
  revalidate?(request: RevalidateRequest): Promise<unknown>;
  /** When present (as on `isr()`), `GET /entry?path=` answers with it. */
  entry?(path: string): Promise<EntryInfo | undefined>;
  /** When present (as on `isr()`), `GET /entries?prefix=&limit=` answers with it. */
  entries?(query: EntriesQuery): Promise<{ entries: EntryInfo[]; truncated: boolean }>;
  /** When present (as on `isr()`), `GET /health` answers with it (`?strict=1`: 503 when degraded). */
  health?(): Promise<HealthReport>;
}

/** Options of `revalidateRouter`. */
export interface RevalidateRouterOptions {
  /** The shared secret the CMS sends (Bearer token, `?secret=` or a `secret` body field). Required. */
  secret: string;
  /** Largest body accepted, in bytes; larger ones get a 413. @default 65536 */
  maxBodySize?: number;
  /** Most paths plus tags in one call; more get a 400. @default 100 */
  maxTargets?: number;
  /**
   * How long the body may take to arrive, in ms, once the router starts reading it; later
   * gets a 408 and the connection is closed. Applies when the router reads the body itself
   * (a body parser mounted before it has its own limits). @default 10000
   */
  bodyTimeout?: number;
  /**
   * For CMSs that sign payloads: an HMAC of the raw body in a header. A valid signature
   * authenticates the call as the secret does. `secret` defaults to the router's secret.
   */
  signature?: {
    header: string;
    algorithm?: 'sha1' | 'sha256' | 'sha512';
    encoding?: 'hex' | 'base64';
    /** Text before the digest in the header, e.g. `sha256=` (GitHub style). */
    prefix?: string;
    secret?: string;
  };
  /**
   * Your own check of a call, given the raw body (empty when a body parser mounted before the
   * router already consumed it). Returning `true` authenticates the call as the secret does.
   */
  verify?: (req: IncomingMessage, rawBody: Buffer) => boolean | Promise<boolean>;
  /** Where the short-secret warning goes. @default the cache's `logger` (for `isr()`'s cache), else console */
  logger?: Pick<Console, 'warn'>;
}

/**
 * Set on requests the router answers, so that the cache in front does not treat a webhook
 * POST as a change to the page at the webhook's own URL (RFC 9111 §4.4).
 */
export const WEBHOOK_REQUEST = Symbol('express-isr.webhook');

type Handler = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * The webhook a CMS calls to refresh pages: `POST /` wherever it is mounted, e.g.
 * `app.use('/api/revalidate', revalidateRouter(cache, { secret }))`, then
 * `curl -X POST 'https://site/api/revalidate?secret=…&path=/blog/hello'`.
 * Works with or without `express.json()` mounted before it.
 */
export function revalidateRouter(cache: Revalidatable, options: RevalidateRouterOptions): Handler {
  const settings = checkRouterOptions(cache, options);
  const secretDigest = digest(settings.secret);
  // A caller may put a secret anywhere in the URL, and the cache logs URLs: tell it what to
  // redact (a cache other than `isr()` has no such hook, and nothing to tell).
  const protect = (cache as unknown as Record<symbol, unknown>)[PROTECT_SECRET];
  if (typeof protect === 'function') {
    for (const secret of [settings.secret, settings.signature?.secret]) {
      if (typeof secret === 'string') protect(secret);
    }
  }

  return function revalidateHandler(req, res, next) {
    const { pathname, query } = splitUrl(req.url ?? '/');
    (req as unknown as Record<symbol, boolean>)[WEBHOOK_REQUEST] = true;
    const answer = (work: Promise<{ status: number; body: unknown }>, what: string) =>
      work
        .then(({ status, body }) => sendJson(res, status, body))
        .catch((error: unknown) => {
          if (error instanceof HttpError) {
            // The rest of a body that timed out may still be coming: the connection is not
            // reused, so those bytes are never read as the next request (RFC 9112 §9.6).
            if (error.status === 408) res.setHeader('connection', 'close');
            sendJson(res, error.status, { error: error.message });
          } else {
            // The cache could not do it (e.g. the store is down); a revalidation did nothing.
            sendJson(res, 503, { error: `${what} failed: ${(error as Error)?.message ?? error}` });
          }
        });
    if (isReading(cache, pathname)) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET');
        sendJson(res, 405, { error: `use GET for ${pathname}` });
        return;
      }
      const work = authenticated(req, query, {}, Buffer.alloc(0)).then((ok) => {
        if (!ok) throw new HttpError(401, 'missing or wrong secret');
        return read(cache, pathname, query);
      });
      answer(work, pathname === '/health' ? 'health check' : 'inspection');
      return;
    }
    if (pathname !== '/' && pathname !== '') {
      next();
      return;
    }
    if (req.method !== 'POST') {
      res.setHeader('allow', 'POST');
      sendJson(res, 405, { error: 'use POST to revalidate' });
      return;
    }
    answer(
      handle(req, query).then((body) => ({ status: 200, body })),
      'revalidation',
    );
  };

  async function handle(req: IncomingMessage, query: URLSearchParams) {
    let read: { raw: Buffer; body: Record<string, unknown> };
    try {
      read = await readBody(req, settings.maxBodySize, settings.bodyTimeout);
    } catch (error) {
      // A body that cannot be read or parsed carries no secret: a caller who gave none in the
      // header or the query is told 401, never how its body was handled. A body that did not
      // arrive in time is a 408 for everyone: the request is incomplete (it may still carry
      // the secret), and the deadline is the same whoever asks, so it tells nothing.
      if (error instanceof HttpError && error.status === 408) throw error;
      if (!secretMatches([bearerOf(req), query.get('secret') ?? undefined])) {
        throw new HttpError(401, 'missing or wrong secret');
      }
      throw error;
    }
    const { raw, body } = read;
    if (!(await authenticated(req, query, body, raw))) {
      throw new HttpError(401, 'missing or wrong secret');
    }
    const input = safely(() => collectInput(query, body, settings.maxTargets));
    let result: unknown;
    if (cache.revalidate) {
      result = await cache.revalidate({ ...input, source: 'webhook' });
    } else {
      // `Revalidatable` stays any object with revalidatePath/revalidateTag (a public type:
      // requiring `revalidate` would break such caches). Without `revalidate`, the targets are
      // separate calls, none atomic with another: each one is made whatever the others do, and
      // the answer says how many failed instead of "revalidated" (a 503, see `answer`).
      const results = await Promise.allSettled([
        ...input.paths.map(async (path) =>
          cache.revalidatePath(path, { type: input.type, mode: input.mode }),
        ),
        ...input.tags.map(async (tag) => cache.revalidateTag(tag, { mode: input.mode })),
      ]);
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) {
        const first = failed[0].reason as Error | undefined;
        throw new Error(
          `${failed.length} of ${results.length} targets not revalidated: ${first?.message ?? first}`,
        );
      }
    }
    return {
      revalidated: true,
      paths: input.paths,
      tags: input.tags,
      mode: input.mode,
      ...outcomeOf(result),
      now: Date.now(),
    };
  }

  /** Whether any candidate is the secret. Every one is compared, always: how long this takes says nothing about the secret. */
  function secretMatches(candidates: unknown[]): boolean {
    let ok = false;
    for (const candidate of candidates) {
      if (typeof candidate === 'string' && timingSafeEqual(digest(candidate), secretDigest))
        ok = true;
    }
    return ok;
  }

  async function authenticated(
    req: IncomingMessage,
    query: URLSearchParams,
    body: Record<string, unknown>,
    raw: Buffer,
  ): Promise<boolean> {
    let ok = secretMatches([bearerOf(req), query.get('secret') ?? undefined, body.secret]);
    if (!ok && settings.signature !== undefined)
      ok = signatureMatches(req, raw, settings.signature, settings.secret);
    if (!ok && settings.verify !== undefined) ok = (await settings.verify(req, raw)) === true;
    return ok;
  }
}

/**
 * The counts (`mode: 'regenerate'`) and the purge state (`onRevalidate`) of a revalidation,
 * for the answer: only those fields, only of their types, whatever the cache resolved with.
 */
function outcomeOf(result: unknown): RevalidationResult {
  const outcome: RevalidationResult = {};
  if (typeof result !== 'object' || result === null) return outcome;
  const given = result as Record<string, unknown>;
  for (const name of ['regenerated', 'failed', 'pending'] as const) {
    const count = given[name];
    if (typeof count === 'number') outcome[name] = count;
  }
  const purge = given.purge;
  if (purge === 'ok' || purge === 'failed' || purge === 'pending') outcome.purge = purge;
  return outcome;
}

function splitUrl(url: string): { pathname: string; query: URLSearchParams } {
  const mark = url.indexOf('?');
  return mark === -1
    ? { pathname: url, query: new URLSearchParams() }
    : { pathname: url.slice(0, mark), query: new URLSearchParams(url.slice(mark + 1)) };
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(text);
}
