import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import type { Freshness } from '../invalidation/freshness';
import { INVALIDATING_METHODS, type UnsafeInvalidation } from '../invalidation/unsafe-invalidation';
import { WEBHOOK_REQUEST } from '../invalidation/webhook/router';
import { debug } from '../observability/report';
import { checkMountOrder } from '../observability/setup-checks';
import { MAX_CONCURRENT_REGENERATIONS, type Regenerator } from '../regeneration/regenerator';
import type { ColdFlights } from '../render/cold-flight';
import { installResponseConfig } from '../render/response-config';
import { sharedRequestHeaders } from '../render/shared-request';
import { isRegeneration, syntheticExchange } from '../render/synthetic-request';
import {
  ageOf,
  type CacheEntry,
  type IsrRequest,
  type IsrResponse,
  type RequestHandler,
} from '../types';
import { carriesCookies, requestBypassReason, unstorableReason } from './eligibility';
import { fastPath } from './fast-path';
import { clockTags, type Lookup } from './lookup';
import { replay } from './replay';
import { markState } from './state-header';

/** A request the middleware answers: the exchange, Express's `next` and the canonical URL. */
interface Visit {
  req: IsrRequest;
  res: IsrResponse;
  next: (err?: unknown) => void;
  url: string;
}

/**
 * The request side of `isr()`: the middleware mounted in the app, and the fast path in front
 * of it (`cache.handler(app)`). What the cache does for its own callers is in isr.ts.
 */
export function handleRequests(
  engine: Engine,
  regenerator: Regenerator,
  cold: ColdFlights,
  unsafe: UnsafeInvalidation,
): {
  middleware: (req: IsrRequest, res: IsrResponse, next: (err?: unknown) => void) => void;
  handler: (app: RequestHandler) => (req: IncomingMessage, res: ServerResponse) => void;
} {
  const { options: o } = engine;
  /** Shared renders started for a visitor who carries cookies, running now. */
  let primes = 0;

  function isrMiddleware(req: IsrRequest, res: IsrResponse, next: (err?: unknown) => void): void {
    if (isRegeneration(req)) {
      installResponseConfig(res);
      next(); // our own render: let the app answer it
      return;
    }
    if (engine.app === undefined) {
      engine.app = topApp(req);
      engine.start();
      checkMountOrder(engine, req, isrMiddleware);
    }

    let bypass: string | undefined;
    let url: string;
    let key: string;
    try {
      bypass = requestBypassReason(req, o);
      ({ url } = engine.canonical(req.originalUrl ?? req.url ?? '/'));
      key = engine.keyFor(req, url);
    } catch (error) {
      // Your `bypass` or `key` threw: the visitor gets the app's answer, uncached (fail open).
      engine.reporter.error(error, { phase: 'miss' });
      installResponseConfig(res);
      next();
      return;
    }
    if (bypass !== undefined) {
      passBy(req, res, next, bypass);
      return;
    }

    const local = engine.peek(key, req.headers);
    if (local !== undefined) {
      // Memory or L1: answered (or handed to the app) without a single await.
      const state = local.entry && engine.freshnessNow(local.entry, local);
      serve({ req, res, next, url }, local, state);
      return;
    }
    engine
      .lookup(key, req.headers)
      .then(async (found) => {
        const state = found.entry && (await engine.freshness(found.entry, found));
        serve({ req, res, next, url }, found, state);
      })
      .catch((error) => {
        // Fail open: whatever went wrong in the cache, the visitor gets the app's answer.
        engine.reporter.error(error, { phase: 'miss', key });
        if (!res.headersSent && !res.writableEnded) next();
      });
  }

  function replayHit(
    req: IncomingMessage,
    res: ServerResponse,
    entry: CacheEntry,
    variantKey: string,
  ) {
    const now = o.now();
    debug('hit: %s', variantKey);
    engine.observer.hit(variantKey, ageOf(entry, now));
    replay(req, res, entry, 'HIT', now, o);
  }

  /** Answers from the entry found (HIT, or STALE + a regeneration), or renders it (MISS). */
  function serve(visit: Visit, found: Lookup, state: Freshness | undefined): void {
    const { req, res, next, url } = visit;
    const { entry, key, variantKey, vary } = found;
    // A request with cookies gets only a page whose render never read them, fresh or stale.
    if (
      isPersonal(req) &&
      !(entry?.readsCookies === false && state !== undefined && state.state !== 'expired')
    ) {
      servePersonal(visit, found, state);
      return;
    }
    if (entry !== undefined && state !== undefined) {
      // Pages another instance stored are learnt on read, for `mode: 'regenerate'`.
      if (!found.local && !engine.isLocalStore && !engine.index.has(variantKey)) {
        engine.index.add({ key, variantKey }, clockTags(entry));
      }
      if (state.state === 'fresh') {
        replayHit(req, res, entry, variantKey);
        return;
      }
      if (state.state === 'stale') {
        const now = o.now();
        debug('stale: %s (%s)', variantKey, state.reason);
        engine.observer.stale(variantKey, ageOf(entry, now), state.reason);
        replay(req, res, entry, 'STALE', now, o);
        regenerator.trigger(key, variantKey, entry);
        return;
      }
      debug('expired: %s (%s)', variantKey, state.reason);
    }
    const unstorable = unstorableReason(url, carriesSecret);
    if (unstorable !== undefined) {
      passBy(req, res, next, unstorable);
      return;
    }
    installResponseConfig(res);
    // Past `maxStale`, the page is rendered with the visitor waiting; within `staleIfError` it
    // still answers should that render fail.
    const fallback = state?.state === 'expired' && state.onError ? entry : undefined;
    cold.serve(req, res, next, variantKey, { key, url, vary, fallback }).catch((error) => {
      engine.reporter.error(error, { phase: 'miss', key });
      if (!res.headersSent && !res.writableEnded) next();
    });
  }

  /**
   * Without `sessionCookies`, a request that carries cookies may be personal: the cache cannot
   * tell a session from an analytics cookie. It is never given a page whose render read cookies
   * (that render saw none, so it is a stranger's page to this visitor) and never waits for a
   * shared render: its own request goes to the app as it came, and it keeps whatever the app
   * answers, Set-Cookie included. A missing page is still rendered apart for the visitors
   * without cookies (at most `MAX_CONCURRENT_REGENERATIONS` at once), and a stale one
   * regenerated.
   */
  function servePersonal(visit: Visit, found: Lookup, state: Freshness | undefined): void {
    const { req, res, next, url } = visit;
    const { entry, key, variantKey, vary } = found;
    // Only a page whose render read cookies is kept from this visitor; any other (missing, or
    // expired and rendered again) is theirs to render because they carry cookies.
    const reason =
      entry?.readsCookies === false || entry === undefined
        ? 'cookie'
        : 'cookie; the page reads cookies';
    debug('bypass: %s %s (%s)', req.method, url, reason);
    engine.observer.bypass(url, reason);
    installResponseConfig(res);
    markState(res, 'BYPASS', { reason }, o.cacheStatus);
    if (entry !== undefined && state?.state === 'stale') {
      regenerator.trigger(key, variantKey, entry);
    } else if (
      (entry === undefined || state?.state === 'expired') &&
      primes < MAX_CONCURRENT_REGENERATIONS &&
      !cold.rendering(variantKey) &&
      unstorableReason(url, carriesSecret) === undefined
    ) {
      // The shared render is given a request of the cache's own, without the visitor's cookies.
      const headers = sharedRequestHeaders(req, o.forwardHeaders, vary, o.host);
      const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
      const stranger = syntheticExchange(url, headers, encrypted);
      primes += 1;
      cold
        .serve(stranger.req, stranger.res, () => {}, variantKey, {
          key,
          url,
          vary,
          requestHeaders: headers,
        })
        .then(() => cold.renderOver(variantKey))
        .catch((error) => engine.reporter.error(error, { phase: 'miss', key }))
        .finally(() => {
          primes -= 1;
        });
    }
    next();
  }

  /** The request goes to the app uncached, marked BYPASS with `reason`. */
  function passBy(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    reason: string,
  ) {
    installResponseConfig(res);
    debug('bypass: %s %s (%s)', req.method, req.url, reason);
    engine.observer.bypass(req.url ?? '/', reason);
    markState(res, 'BYPASS', { reason }, o.cacheStatus);
    if (o.invalidateOnUnsafe) invalidateAfterSuccess(req, res);
    next();
  }

  /** Whether a URL carries a secret the webhook router registered (see `unstorableReason`). */
  function carriesSecret(url: string): boolean {
    return engine.redactor.carriesSecret(url);
  }

  /** A request that carries cookies when no `sessionCookies` say which ones are personal. */
  function isPersonal(req: IncomingMessage): boolean {
    return o.sessionCookies === undefined && carriesCookies(req);
  }

  /** RFC 9111 §4.4: a successful unsafe request invalidates the target URI's page. */
  function invalidateAfterSuccess(req: IsrRequest, res: IsrResponse): void {
    const method = req.method ?? '';
    if (!INVALIDATING_METHODS.has(method)) return;
    const { path } = engine.canonical(req.originalUrl ?? req.url ?? '/');
    res.once('finish', () => {
      // RFC 9111 §4.4: only a non-error status (2xx, 3xx) invalidates.
      if (res.statusCode >= 400 || (req as unknown as Record<symbol, boolean>)[WEBHOOK_REQUEST])
        return;
      unsafe
        .succeeded(path, method)
        .catch((error) => engine.reporter.error(error, { phase: 'store-write' }));
    });
  }

  return { middleware: isrMiddleware, handler: fastPath({ engine, cold, replayHit, isPersonal }) };
}

/**
 * Express sets `req.app` to the (sub-)app handling the request and `app.parent` on mounted
 * apps: the top of that chain is what a synthetic request must be dispatched through.
 */
function topApp(req: IsrRequest): RequestHandler | undefined {
  let app = req.app as (RequestHandler & { parent?: unknown }) | undefined;
  while (typeof app?.parent === 'function')
    app = app.parent as RequestHandler & { parent?: unknown };
  return typeof app === 'function' ? app : undefined;
}
