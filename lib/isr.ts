import type { IncomingMessage, ServerResponse } from 'node:http';
import { Engine } from './engine';
import { type RevalidationResult, Revalidator } from './invalidation/revalidator';
import {
  modeProblem,
  pathProblem,
  type RevalidatePathOptions,
  type RevalidateRequest,
  type RevalidateTagOptions,
  tagProblem,
  typeProblem,
} from './invalidation/targets';
import { UnsafeInvalidation } from './invalidation/unsafe-invalidation';
import { type HealthReport, health } from './observability/health';
import { type EntriesQuery, type EntryInfo, Inspector } from './observability/inspect';
import type { IsrEventName, IsrEvents, IsrStats } from './observability/observer';
import { PROTECT_SECRET } from './observability/redact';
import { debug } from './observability/report';
import { checkSetup } from './observability/setup-checks';
import { CACHE_WARN, type WarningCode } from './observability/warnings';
import type { IsrOptions } from './options';
import { type PrerenderOptions, type PrerenderResult, prerender } from './regeneration/prerender';
import { Regenerator } from './regeneration/regenerator';
import { ColdFlights } from './render/cold-flight';
import { handleRequests } from './request/middleware';
import { resolveOptions } from './resolve-options';
import { waitAtMost } from './timeout';
import type { RequestHandler } from './types';
import { fail, invalid } from './validate';

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
   * webhook uses. Every target is checked before anything is invalidated. Resolves with what it
   * did: with `mode: 'regenerate'`, how many pages were `regenerated`, `failed` or are still
   * `pending`; with `onRevalidate`, how the `purge` went.
   */
  revalidate(request: RevalidateRequest): Promise<RevalidationResult>;
  /** What the cache did since it was created: requests by state, regenerations, revalidations. */
  stats(): IsrStats;
  /** The state of the page at `path` (fresh, stale or expired, age, tags, size, last error). */
  entry(path: string): Promise<EntryInfo | undefined>;
  /**
   * The pages whose URL starts with `prefix`, at most `limit` (on Redis from the index every
   * instance writes, else SCAN; never KEYS).
   */
  entries(query?: EntriesQuery): Promise<{ entries: EntryInfo[]; truncated: boolean }>;
  /**
   * This instance's view of the fleet, measured now: whether the store answers (and how fast),
   * the pub/sub link, the circuit breaker, L1, and the renders in flight on every instance
   * sharing a Redis (on this one otherwise). Bounded in time; never rejects.
   */
  health(): Promise<HealthReport>;
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
  const { middleware: isrMiddleware, handler } = handleRequests(engine, regenerator, cold, unsafe);

  async function revalidatePath(path: string, options: RevalidatePathOptions = {}): Promise<void> {
    const { type = 'page', mode = 'stale' } = checkedOptions(options, 'revalidatePath');
    await revalidate({ paths: [path], type, mode }, 'revalidatePath');
  }

  async function revalidateTag(tag: string, options: RevalidateTagOptions = {}): Promise<void> {
    const { mode = 'stale' } = checkedOptions(options, 'revalidateTag');
    await revalidate({ tags: [tag], mode }, 'revalidateTag');
  }

  async function revalidate(
    request: RevalidateRequest,
    method = 'revalidate',
  ): Promise<RevalidationResult> {
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
    if (problem !== undefined) invalid(`${method}: ${problem}`);
    return revalidator.revalidate({ paths, tags, type, mode, source });
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
    // One bound for all of it, as `idle()`'s: an `onRevalidate` still retrying against a CDN
    // that is down (the purgers back off for minutes) must not hold a shutdown past it.
    await waitAtMost(
      regenerator.close().then(() => idle()),
      o.regenerateTimeout + IDLE_GRACE_MS,
    );
    await engine.close();
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
    health: () => health(engine),
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
    // ...and warns through the cache, so that its `silence` and `logger` options apply.
    [CACHE_WARN]: (code: WarningCode, message: string) => engine.warn(code, message),
  });
}

function describeStore(store: unknown): string {
  if (store === undefined) return 'memory (default)';
  if (typeof store === 'string') return store.replace(/\/\/[^@/]*@/, '//***@'); // no password in logs
  return (store as object).constructor?.name ?? 'custom';
}

function checkedOptions<T extends object>(options: T, method: string): T {
  if (typeof options !== 'object' || options === null)
    fail(`${method}: options`, 'an object', options);
  return options;
}
