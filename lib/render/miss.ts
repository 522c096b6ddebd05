import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { warnShortRevalidate } from '../observability/setup-checks';
import { varyNames } from '../request/eligibility';
import { markState } from '../request/state-header';
import type { CacheEntry, IsrRequest, IsrResponse } from '../types';
import type { Captured } from './capture';
import { buildEntry } from './entry';
import { PageRender } from './page-render';
import type { RenderFailure } from './render-failures';
import { installResponseConfig } from './response-config';
import { sharedRequestHeaders } from './shared-request';
import { VisitorRelay } from './visitor-relay';

export interface MissResult {
  /** The page, without br/gzip variants yet: shareable with requests that waited for it. */
  entry: CacheEntry | undefined;
  /** Settles once the full entry (with variants) is in the store. */
  stored: Promise<void> | undefined;
  /**
   * The shared render's response when it failed (5xx, or cut off: `incomplete`), to tell a
   * failed render from a personal one and answer its waiters (see render-failures.ts).
   */
  response?: Captured;
  /** Set when the page proved not cacheable (not a failure): why, and what it varies on. */
  uncacheable?: { reason: string; vary: string[] };
}

export interface MissTarget {
  /** The URL's key. */
  key: string;
  /** The canonical URL the render is given. */
  url: string;
  /** Headers the URL's responses are known to vary on. */
  vary: string[];
  /** The headers to render with, when already chosen from a visitor's (`sharedRequestHeaders`). */
  requestHeaders?: Record<string, string>;
  /**
   * The failure the render's flight recorded when it ran past `regenerateTimeout` (its waiters
   * got it), so the visitor it was made for is answered alike.
   */
  hung?: () => RenderFailure | undefined;
  /**
   * The page's last stored version, past `maxStale` but within `staleIfError`: it answers
   * instead of an error should this render fail (RFC 5861).
   */
  fallback?: CacheEntry;
}

/**
 * Renders a missing page. The render whose result may be shared never runs on the visitor's
 * own request: it is a request of the cache's own (`syntheticExchange`) carrying only the
 * allowlisted headers (`sharedRequestHeaders`) and no body, so nothing a client sends can
 * shape the stored page. Its response is then one of two things for the visitor:
 *
 * - shareable (the headers say it may be stored): relayed to the visitor while it streams,
 *   exactly as it is stored — answered with a 304 when the visitor's validators match, and
 *   encoded by any `compression()` mounted before `isr()` for the visitor's real
 *   Accept-Encoding, since the visitor's request is never touched;
 * - not shareable (personal, an error the app may answer differently, another content type…):
 *   the visitor's own request goes on to the app, untouched — cookies, conditionals, `Range`,
 *   `User-Agent` and body included — and gets what the app answers them. The shared render is
 *   cut off. (An error page with nothing personal in it is relayed instead: rendering the
 *   failure twice would only double the load on a failing app.)
 *
 * Resolves once the shared render is over: with the entry when it proved cacheable (before
 * its br/gzip variants are made, so waiting requests are not held up by compression) and the
 * store still under way, or with no entry when nothing may be shared.
 */
export function renderMiss(
  engine: Engine,
  req: IsrRequest,
  res: IsrResponse,
  next: (err?: unknown) => void,
  target: MissTarget,
): Promise<MissResult> {
  const { options } = engine;
  const app = engine.app;
  if (app === undefined) {
    engine.warn(
      'ISR_NO_APP',
      'isr() cannot render pages apart from the visitor without the app to dispatch through, so nothing is cached: pass it, e.g. isr({ app }) with Connect or node:http (Express is found by itself).',
    );
    installResponseConfig(res);
    markState(res, 'BYPASS', { reason: 'no app' }, options.cacheStatus);
    next();
    return Promise.resolve({ entry: undefined, stored: undefined });
  }
  const requestHeaders =
    target.requestHeaders ??
    sharedRequestHeaders(req, options.forwardHeaders, target.vary, options.host);
  const encrypted = (req.socket as { encrypted?: boolean } | undefined)?.encrypted === true;
  const shared = new PageRender(engine, target.url, requestHeaders, encrypted);
  const visitor = new VisitorRelay(engine, req, res, next, target, shared);
  /** The shared render was cut off on purpose: nothing to store, and no failure either. */
  let cutOff: string | undefined;
  /** The response judged at its head: why it may not be stored (`reason`), once known. */
  let atHead: { reason: string | undefined } | undefined;
  const captured = shared.capture({
    beforeHeaders(wholeBody) {
      const status = shared.res.statusCode;
      const headers = shared.res.getHeaders();
      const policy = shared.policy(headers);
      atHead = { reason: shared.uncacheable(status, headers, policy) };
      cutOff = visitor.head(status, headers, policy, atHead.reason, wholeBody) ?? cutOff;
    },
    onBody: (chunk) => visitor.body(chunk),
    onEnd: () => visitor.end(),
    onHookError: (error) => visitor.hookError(error),
  });

  let failure: string | undefined;
  try {
    if (hasFinalHandler(app)) {
      // Express and Connect answer what no route answered themselves (their final handler:
      // a 404, or the error page of an error that got past the app's own handlers), so that
      // answer is a response like any other: an error page relayed to the visitor and shown
      // to the waiters, a 404 after which the visitor's own request meets the same 404.
      (app as (req: IncomingMessage, res: ServerResponse) => void)(shared.req, shared.res);
    } else {
      app(shared.req, shared.res, (err?: unknown) => {
        // A bare handler: the visitor's own request goes the same way, to the app's own 404,
        // or — without being rendered again — to its error handling, with the same error.
        if (err) failure = `error: ${err instanceof Error ? err.message : String(err)}`;
        else cutOff = 'no route';
        if (!(err && visitor.staleInstead()))
          visitor.ownRender(failure ?? 'no route', err || undefined);
        if (!shared.res.headersSent) shared.res.statusCode = err ? 500 : 404;
        shared.res.end();
      });
    }
  } catch (error) {
    failure = `error: ${error instanceof Error ? error.message : String(error)}`;
    if (!visitor.staleInstead()) visitor.ownRender(failure, error);
    shared.res.destroy();
  }

  // The shared render hangs: the visitor is told to come back rather than wait for ever (RFC
  // 9110 §15.6.5, as its waiters are, see flight.ts). The render may still end well and
  // be stored; one still running `regenerateTimeout` later is cut off (an Express 4 route
  // whose promise rejected never ends its response), so that the page is tried again.
  const deadline = setTimeout(() => {
    visitor.timedOut();
    const cutOffLater = setTimeout(() => {
      failure = `the render took longer than ${2 * options.regenerateTimeout} ms`;
      visitor.cutOff();
      shared.res.destroy();
    }, options.regenerateTimeout);
    cutOffLater.unref();
    captured.then(() => clearTimeout(cutOffLater));
  }, options.regenerateTimeout);
  deadline.unref();

  return captured.then(async (result) => {
    clearTimeout(deadline);
    visitor.renderOver(result.incomplete);
    const policy = shared.policy(result.headers);
    if (
      failure !== undefined ||
      (cutOff === undefined && (result.status >= 500 || result.incomplete === 'aborted'))
    ) {
      const reason = failure ?? (result.status >= 500 ? `status ${result.status}` : 'aborted');
      debug('miss: %s not stored (%s)', target.url, reason);
      // An error that got past the app's handlers, or a render past its deadline, left no page
      // of the app's to show the waiters: `incomplete` says so.
      const response: Captured =
        failure === undefined ? result : { ...result, incomplete: 'aborted' };
      return { entry: undefined, stored: undefined, response };
    }
    if (cutOff !== undefined) {
      const uncacheable = { reason: cutOff, vary: shared.renderedVary(result.headers) };
      return { entry: undefined, stored: undefined, uncacheable };
    }
    // Judged once, at its head; the body can only have changed what `uncacheableSinceHead` says.
    const reason =
      result.incomplete ??
      (atHead === undefined
        ? shared.uncacheable(result.status, result.headers, policy)
        : (atHead.reason ?? shared.uncacheableSinceHead(result.headers, policy)));
    if (reason !== undefined) {
      debug('miss: %s not stored (%s)', target.url, reason);
      const uncacheable = { reason, vary: shared.renderedVary(result.headers) };
      return { entry: undefined, stored: undefined, uncacheable };
    }
    warnShortRevalidate(engine, policy.revalidate, `res.isr({ revalidate }) on ${target.url}`);
    const context = shared.entryContext(policy);
    let entry: CacheEntry;
    try {
      entry = await buildEntry(result, { ...context, compressThreshold: false });
    } catch (error) {
      // A body that does not decode (a corrupt gzip): the visitor got it as the app sent it.
      debug('miss: %s not stored (%s)', target.url, (error as Error).message);
      return { entry: undefined, stored: undefined };
    }
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
 * An Express or Connect app (not a bare handler, nor an Express Router, which needs a `next`):
 * it has a final handler of its own when given none.
 */
function hasFinalHandler(app: unknown): boolean {
  const candidate = app as { handle?: unknown; listen?: unknown };
  return typeof candidate.handle === 'function' && typeof candidate.listen === 'function';
}
