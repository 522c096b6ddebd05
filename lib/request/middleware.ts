import type { IncomingMessage, ServerResponse } from 'node:http';
import { clockTags, Engine, type Lookup } from '../engine';
import type { Freshness } from '../invalidation/freshness';
import {
  modeProblem,
  pathProblem,
  type RevalidatePathOptions,
  type RevalidateRequest,
  type RevalidateTagOptions,
  Revalidator,
  tagProblem,
  typeProblem,
} from '../invalidation/revalidator';
import { INVALIDATING_METHODS, UnsafeInvalidation } from '../invalidation/unsafe-invalidation';
import { WEBHOOK_REQUEST } from '../invalidation/webhook/router';
import { type EntriesQuery, type EntryInfo, Inspector } from '../observability/inspect';
import type { IsrEventName, IsrEvents, IsrStats } from '../observability/observer';
import { PROTECT_SECRET } from '../observability/redact';
import { debug } from '../observability/report';
import { checkMountOrder, checkSetup } from '../observability/setup-checks';
import { type IsrOptions, resolveOptions } from '../options';
import { type PrerenderOptions, type PrerenderResult, prerender } from '../regeneration/prerender';
import { MAX_CONCURRENT_REGENERATIONS, Regenerator } from '../regeneration/regenerator';
import { ColdFlights } from '../render/cold-flight';
import { installResponseConfig } from '../render/response-config';
import { sharedRequestHeaders } from '../render/shared-request';
import { isRegeneration, syntheticExchange } from '../render/synthetic-request';
import { waitAtMost } from '../timeout';
import type { CacheEntry, IsrRequest, IsrResponse, RequestHandler } from '../types';
import { carriesCookies, requestBypassReason } from './eligibility';
import { replay } from './replay';
import { markState } from './state-header';

/** What `idle()` and `close()` wait beyond `regenerateTimeout`: the stores after a late render. */
const IDLE_GRACE_MS = 1000;

/** The middleware returned by `isr()`, carrying the cache's methods. */
export interface IsrMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: any) => void): void;
  /**
   * Marks the page at `path` (every query variant) — or, with `type: 'layout'`, every page at
   * or below `path` — stale (`mode: 'stale'`, default), unservable (`'expire'`) or stale and
   * re-rendered now (`'regenerate'`). Resolves once the store recorded it, so every instance
   * sharing the store sees it — with `'regenerate'`, once the re-renders are done too (for
   * `regenerateTimeout` at most). Throws a TypeError for an invalid path, type or mode.
   */
  revalidatePath(path: string, options?: RevalidatePathOptions): Promise<void>;
  /** Like `revalidatePath`, for every page tagged `tag` (by `res.isr`, `Cache-Tag`, `Surrogate-Key`). */
  revalidateTag(tag: string, options?: RevalidateTagOptions): Promise<void>;
  /**
   * Several paths and tags in one invalidation (one event, one `onRevalidate` call): what the
   * webhook uses. Every target is checked before anything is invalidated.
   */
  revalidate(request: RevalidateRequest): Promise<void>;
  /** What the cache did since it was created: requests by state, regenerations, revalidations. */
  stats(): IsrStats;
  /** The state of the page at `path` (fresh, stale or expired, age, tags, size, last error). */
  entry(path: string): Promise<EntryInfo | undefined>;
  /** The pages whose URL starts with `prefix`, at most `limit` (SCAN on Redis, never KEYS). */
  entries(query?: EntriesQuery): Promise<{ entries: EntryInfo[]; truncated: boolean }>;
  /** Listens to an event (`hit`, `stale`, `miss`, `bypass`, `regenerate:*`, `revalidate`, `store:error`). */
  on<K extends IsrEventName>(name: K, listener: (event: IsrEvents[K]) => void): void;
  off<K extends IsrEventName>(name: K, listener: (event: IsrEvents[K]) => void): void;
  /**
   * Renders `paths` ahead of their first visitor and stores them (`concurrency` at a time,
   * default 4); a page already fresh is left alone and a fresher entry is never replaced.
   */
  prerender(paths: string[], options?: PrerenderOptions): Promise<PrerenderResult[]>;
  /**
   * The fast path in front of the app: `http.createServer(cache.handler(app))`. Fresh pages in
   * memory (or L1) are answered before the app sees the request — same headers, 304s and HEAD
   * as the middleware — and requests for a page being rendered wait for that render there;
   * every other request goes to `app` unchanged. The middleware must still be mounted in the
   * app: it is what renders, captures and stores.
   */
  handler(app: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Resolves once no render, background regeneration or store is running — or once
   * `regenerateTimeout` (plus a second) has passed, whatever still hangs. Handy in tests.
   */
  idle(): Promise<void>;
  /**
   * Waits for in-flight renders, regenerations and stores (as `idle()`: `regenerateTimeout`
   * plus a second at most), and starts no new ones. A store passed in as an option stays
   * open: close what you own.
   */
  close(): Promise<void>;
}

/**
 * Creates the ISR middleware. Mount it before the routes it caches:
 * `app.use(isr())`.
 */
export function createIsr(options?: IsrOptions): IsrMiddleware {
  const engine = new Engine(resolveOptions(options));
  const regenerator = new Regenerator(engine);
  const cold = new ColdFlights(engine);
  const revalidator = new Revalidator(engine, regenerator, () => cold.forgetRendered());
  const inspector = new Inspector(engine, regenerator);
  const { logger: _logger, unknownOptions: _unknown, ...shown } = engine.options;
  debug('options: %o', { ...shown, store: describeStore(engine.options.store) });
  checkSetup(engine);
  const { options: o } = engine;
  const unsafe = new UnsafeInvalidation(engine, (path) =>
    revalidator.revalidate({
      paths: [path],
      tags: [],
      type: 'page',
      mode: 'stale',
      source: 'unsafe-method',
    }),
  );
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
      installResponseConfig(res);
      debug('bypass: %s %s (%s)', req.method, req.url, bypass);
      engine.observer.bypass(req.url ?? '/', bypass);
      markState(res, 'BYPASS', { reason: bypass }, o.cacheStatus);
      if (o.invalidateOnUnsafe) invalidateAfterSuccess(req, res);
      next();
      return;
    }

    const local = engine.peek(key, req.headers);
    if (local !== undefined) {
      // Memory or L1: answered (or handed to the app) without a single await.
      const state = local.entry && engine.freshnessNow(local.entry, local);
      serve(req, res, next, url, local, state);
      return;
    }
    engine
      .lookup(key, req.headers)
      .then(async (found) => {
        const state = found.entry && (await engine.freshness(found.entry, found));
        serve(req, res, next, url, found, state);
      })
      .catch((error) => {
        // Fail open: whatever went wrong in the cache, the visitor gets the app's answer.
        engine.reporter.error(error, { phase: 'miss', key });
        if (!res.headersSent && !res.writableEnded) next();
      });
  }

  /**
   * For `handler(app)`: a fresh page in memory (or L1) is answered at once, and a request for a
   * page being rendered joins the render's waiters (see `ColdFlights.joinBeforeApp`). False when
   * the app must see the request (stale pages too: the middleware answers and regenerates them).
   */
  function answerBeforeApp(
    req: IncomingMessage,
    res: ServerResponse,
    app: RequestHandler,
  ): boolean {
    const { url } = engine.canonical(req.url ?? '/');
    const key = engine.keyFor(req, url);
    const found = engine.peek(key, req.headers);
    // A request with cookies never waits for a shared render, and gets a stored page only
    // when that page's render never read cookies: the middleware decides the rest.
    const personal = isPersonal(req);
    if (personal && found?.entry?.readsCookies !== false) return false;
    let fallback: CacheEntry | undefined;
    if (found?.entry !== undefined) {
      const state = engine.freshnessNow(found.entry, found);
      if (state.state === 'fresh') {
        replayHit(req, res, found.entry, found.variantKey);
        return true;
      }
      if (state.state === 'stale') return false;
      if (state.onError) fallback = found.entry;
    }
    if (personal) return false;
    // Not in memory: while a page is being rendered its variant key is its URL's key, unless
    // the store knows it varies, which only the middleware's lookup can tell.
    return cold.joinBeforeApp(
      req,
      res,
      found?.variantKey ?? key,
      () => passToApp(app, req, res),
      fallback,
    );
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
  function serve(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    url: string,
    found: Lookup,
    state: Freshness | undefined,
  ): void {
    const { entry, key, variantKey, vary } = found;
    // A request with cookies gets only a page whose render never read them, fresh or stale.
    if (
      isPersonal(req) &&
      !(entry?.readsCookies === false && state !== undefined && state.state !== 'expired')
    ) {
      servePersonal(req, res, next, url, found, state);
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
  function servePersonal(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    url: string,
    found: Lookup,
    state: Freshness | undefined,
  ): void {
    const { entry, key, variantKey, vary } = found;
    const reason = entry === undefined ? 'cookie' : 'cookie; the page reads cookies';
    debug('bypass: %s %s (%s)', req.method, url, reason);
    engine.observer.bypass(url, reason);
    installResponseConfig(res);
    markState(res, 'BYPASS', { reason }, o.cacheStatus);
    if (entry !== undefined && state?.state === 'stale') {
      regenerator.trigger(key, variantKey, entry);
    } else if (
      (entry === undefined || state?.state === 'expired') &&
      primes < MAX_CONCURRENT_REGENERATIONS &&
      !cold.rendering(variantKey)
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

  async function revalidatePath(path: string, options: RevalidatePathOptions = {}): Promise<void> {
    const { type = 'page', mode = 'stale' } = checkedOptions(options, 'revalidatePath');
    await revalidate({ paths: [path], type, mode }, 'revalidatePath');
  }

  async function revalidateTag(tag: string, options: RevalidateTagOptions = {}): Promise<void> {
    const { mode = 'stale' } = checkedOptions(options, 'revalidateTag');
    await revalidate({ tags: [tag], mode }, 'revalidateTag');
  }

  async function revalidate(request: RevalidateRequest, method = 'revalidate'): Promise<void> {
    const {
      paths = [],
      tags = [],
      type = 'page',
      mode = 'stale',
      source = 'api',
    } = checkedOptions(request, method);
    const problem =
      (Array.isArray(paths) ? paths.map(pathProblem).find(Boolean) : 'paths must be an array') ??
      (Array.isArray(tags) ? tags.map(tagProblem).find(Boolean) : 'tags must be an array') ??
      typeProblem(type) ??
      modeProblem(mode) ??
      (source === 'api' || source === 'webhook' ? undefined : 'source must be "api" or "webhook"');
    if (problem !== undefined) throw new TypeError(`[express-isr] ${method}: ${problem}`);
    await revalidator.revalidate({ paths, tags, type, mode, source });
  }

  /**
   * Waits for renders and stores in flight — for `regenerateTimeout` (plus a second for their
   * stores) at most: a render that hangs for ever must not hold a test or a shutdown with it.
   * Regenerations have their own deadline.
   */
  async function idle(): Promise<void> {
    const settled = (async () => {
      while (cold.busy) {
        await cold.settled();
        await regenerator.idle();
      }
      await regenerator.idle();
    })();
    await waitAtMost(settled, o.regenerateTimeout + IDLE_GRACE_MS);
  }

  /** Starts no new regeneration, waits for what is in flight (bounded as `idle()` is), then closes. */
  async function close(): Promise<void> {
    unsafe.close();
    await regenerator.close();
    await idle();
    await engine.close();
  }

  function handler(app: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
    if (typeof app !== 'function') {
      throw new TypeError(
        '[express-isr] handler(app): app must be the request handler (your Express app)',
      );
    }
    engine.app ??= app;
    engine.start();
    return function isrFastPath(req: IncomingMessage, res: ServerResponse): void {
      try {
        if (requestBypassReason(req, o) === undefined && answerBeforeApp(req, res, app)) return;
      } catch (error) {
        // A `bypass` or `key` function that throws here, on the bare request (it runs before
        // Express adds `req.path` and the like), must not take the server down: the app, and
        // the middleware in it, get the request instead.
        engine.reporter.error(error, { phase: 'miss' });
        if (res.headersSent) return;
      }
      passToApp(app, req, res);
    };
  }

  function prerenderPaths(paths: string[], options?: PrerenderOptions): Promise<PrerenderResult[]> {
    engine.start();
    return prerender(engine, paths, options);
  }

  return Object.assign(isrMiddleware, {
    revalidatePath,
    revalidateTag,
    revalidate: (request: RevalidateRequest) => revalidate(request),
    stats: () => engine.observer.snapshot(),
    entry: (path: string) => inspector.entry(path),
    entries: (query?: EntriesQuery) => inspector.entries(query),
    on: <K extends IsrEventName>(name: K, listener: (event: IsrEvents[K]) => void) => {
      engine.observer.emitter.on(name, listener);
    },
    off: <K extends IsrEventName>(name: K, listener: (event: IsrEvents[K]) => void) => {
      engine.observer.emitter.off(name, listener);
    },
    prerender: prerenderPaths,
    handler,
    idle,
    close,
    // The webhook router registers its secrets here, to keep them out of logs and events.
    [PROTECT_SECRET]: (secret: string) => engine.protectSecret(secret),
  });
}

function passToApp(app: RequestHandler, req: IncomingMessage, res: ServerResponse): void {
  app(req, res, (err?: unknown) => {
    // Only reached with a bare handler (Express apps end the response themselves).
    res.statusCode = err ? 500 : 404;
    res.end();
  });
}

function describeStore(store: unknown): string {
  if (store === undefined) return 'memory (default)';
  if (typeof store === 'string') return store.replace(/\/\/[^@/]*@/, '//***@'); // no password in logs
  return (store as object).constructor?.name ?? 'custom';
}

function ageOf(entry: CacheEntry, now: number): number {
  return Math.max(0, Math.floor((now - entry.generatedAt) / 1000));
}

function checkedOptions<T extends object>(options: T, method: string): T {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(
      `[express-isr] ${method}: options must be an object, got ${JSON.stringify(options)}`,
    );
  }
  return options;
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
