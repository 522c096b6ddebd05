import type { IncomingMessage, ServerResponse } from 'node:http';
import { ColdFlights } from './cold-flight';
import { requestBypassReason } from './eligibility';
import { clockTags, Engine, type Lookup } from './engine';
import { pageTag } from './key';
import { type IsrOptions, resolveOptions } from './options';
import { type PrerenderOptions, type PrerenderResult, prerender } from './prerender';
import { Regenerator } from './regenerate';
import { replay } from './replay';
import { debug } from './report';
import { installResponseConfig } from './response-config';
import {
  modeProblem,
  pathProblem,
  type RevalidatePathOptions,
  type RevalidateTagOptions,
  Revalidator,
  tagProblem,
  typeProblem,
} from './revalidate';
import { isRegeneration } from './synthetic-request';
import type { IsrRequest, IsrResponse, RequestHandler } from './types';

/** The middleware returned by `isr()`, carrying the cache's methods. */
export interface IsrMiddleware {
  (req: IncomingMessage, res: ServerResponse, next: (err?: any) => void): void;
  /**
   * Marks the page at `path` (every query variant) — or, with `type: 'layout'`, every page at
   * or below `path` — stale (`mode: 'stale'`, default), unservable (`'expire'`) or stale and
   * re-rendered now (`'regenerate'`). Resolves once the store recorded it, so every instance
   * sharing the store sees it. Throws a TypeError for an invalid path, type or mode.
   */
  revalidatePath(path: string, options?: RevalidatePathOptions): Promise<void>;
  /** Like `revalidatePath`, for every page tagged `tag` (by `res.isr`, `Cache-Tag`, `Surrogate-Key`). */
  revalidateTag(tag: string, options?: RevalidateTagOptions): Promise<void>;
  /**
   * Renders `paths` ahead of their first visitor and stores them (`concurrency` at a time,
   * default 4); a page already fresh is left alone and a fresher entry is never replaced.
   */
  prerender(paths: string[], options?: PrerenderOptions): Promise<PrerenderResult[]>;
  /** Resolves once no background regeneration or store is running. Handy in tests. */
  idle(): Promise<void>;
  /**
   * Waits for in-flight regenerations and stores, and starts no new ones. A store passed in
   * as an option stays open: close what you own.
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
  const revalidator = new Revalidator(engine, regenerator);
  const cold = new ColdFlights(engine);
  const { options: o } = engine;

  function isrMiddleware(req: IsrRequest, res: IsrResponse, next: (err?: unknown) => void): void {
    installResponseConfig(res);
    if (isRegeneration(req)) {
      next(); // our own render: let the app answer it
      return;
    }
    if (engine.app === undefined) {
      engine.app = topApp(req);
      engine.start();
    }

    const bypass = requestBypassReason(req, o);
    if (bypass !== undefined) {
      debug('bypass: %s %s (%s)', req.method, req.url, bypass);
      res.setHeader('x-isr-cache', 'BYPASS');
      if (o.invalidateOnUnsafe && req.method !== 'GET' && req.method !== 'HEAD') {
        invalidateAfterSuccess(req, res);
      }
      next();
      return;
    }

    const { url } = engine.canonical(req.originalUrl ?? req.url ?? '/');
    const key = engine.keyFor(req, url);
    engine
      .lookup(key, req.headers)
      .then((found) => serve(req, res, next, key, url, found))
      .catch((error) => {
        // Fail open: whatever went wrong in the cache, the visitor gets the app's answer.
        engine.reporter.error(error, { phase: 'miss', key });
        if (!res.headersSent && !res.writableEnded) next();
      });
  }

  async function serve(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    key: string,
    url: string,
    found: Lookup,
  ): Promise<void> {
    const { entry, variantKey, vary } = found;
    if (entry !== undefined) {
      // Pages another instance stored are learnt on read, for `mode: 'regenerate'`.
      if (!engine.index.has(variantKey)) engine.index.add({ key, variantKey }, clockTags(entry));
      const state = await engine.freshness(entry, found);
      if (state.state === 'fresh') {
        debug('hit: %s', variantKey);
        return replay(req, res, entry, 'HIT', o.now(), o.cacheControl);
      }
      if (state.state === 'stale') {
        debug('stale: %s (%s)', variantKey, state.reason);
        replay(req, res, entry, 'STALE', o.now(), o.cacheControl);
        return regenerator.trigger(key, variantKey, entry);
      }
      debug('expired: %s (%s)', variantKey, state.reason);
    }
    return cold.serve(req, res, next, variantKey, { key, url, vary });
  }

  /** RFC 9111 §4.4: a successful unsafe request invalidates the target URI's page. */
  function invalidateAfterSuccess(req: IsrRequest, res: IsrResponse): void {
    const { path } = engine.canonical(req.originalUrl ?? req.url ?? '/');
    res.once('finish', () => {
      if (res.statusCode >= 400) return;
      debug('invalidate: %s after %s %d', path, req.method, res.statusCode);
      engine
        .bump([pageTag(path)], 'stale')
        .catch((error) => engine.reporter.error(error, { phase: 'store-write' }));
    });
  }

  async function revalidatePath(path: string, options: RevalidatePathOptions = {}): Promise<void> {
    const { type = 'page', mode = 'stale' } = checkedOptions(options, 'revalidatePath');
    const problem = pathProblem(path) ?? typeProblem(type) ?? modeProblem(mode);
    if (problem !== undefined) throw new TypeError(`[express-isr] revalidatePath: ${problem}`);
    await revalidator.revalidate({ paths: [path], tags: [], type, mode });
  }

  async function revalidateTag(tag: string, options: RevalidateTagOptions = {}): Promise<void> {
    const { mode = 'stale' } = checkedOptions(options, 'revalidateTag');
    const problem = tagProblem(tag) ?? modeProblem(mode);
    if (problem !== undefined) throw new TypeError(`[express-isr] revalidateTag: ${problem}`);
    await revalidator.revalidate({ paths: [], tags: [tag], type: 'page', mode });
  }

  async function idle(): Promise<void> {
    while (cold.busy) {
      await cold.settled();
      await regenerator.idle();
    }
    await regenerator.idle();
  }

  async function close(): Promise<void> {
    await regenerator.close();
    await idle();
    await engine.close();
  }

  function prerenderPaths(paths: string[], options?: PrerenderOptions): Promise<PrerenderResult[]> {
    engine.start();
    return prerender(engine, paths, options);
  }

  return Object.assign(isrMiddleware, {
    revalidatePath,
    revalidateTag,
    prerender: prerenderPaths,
    idle,
    close,
  });
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
