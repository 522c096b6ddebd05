import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import type { ColdFlights } from '../render/cold-flight';
import type { CacheEntry, RequestHandler } from '../types';
import { fail } from '../validate';
import { requestBypassReason } from './eligibility';

/** What the fast path shares with the middleware: how a hit is answered, and who is personal. */
export interface FastPathParts {
  engine: Engine;
  cold: ColdFlights;
  replayHit(req: IncomingMessage, res: ServerResponse, entry: CacheEntry, variantKey: string): void;
  isPersonal(req: IncomingMessage): boolean;
}

/**
 * `cache.handler(app)`: answers fresh pages in memory (or L1) before the app sees the request,
 * and lets requests for a page being rendered wait for that render; the rest go to `app`.
 */
export function fastPath({
  engine,
  cold,
  replayHit,
  isPersonal,
}: FastPathParts): (app: RequestHandler) => (req: IncomingMessage, res: ServerResponse) => void {
  const { options: o } = engine;

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

  function handler(app: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
    if (typeof app !== 'function') {
      fail('handler(app): app', 'the request handler (your Express app)', app);
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

  return handler;
}

function passToApp(app: RequestHandler, req: IncomingMessage, res: ServerResponse): void {
  app(req, res, (err?: unknown) => {
    // Only reached with a bare handler (Express apps end the response themselves).
    res.statusCode = err ? 500 : 404;
    res.end();
  });
}
