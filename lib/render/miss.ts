import type { IncomingMessage, ServerResponse } from 'node:http';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { checkRevalidate } from '../observability/setup-checks';
import { setCdnTagHeader } from '../request/cdn-tags';
import { carriesCookies, headerText, varyNames } from '../request/eligibility';
import { answeredNotModified, relayHead, sameVariant } from '../request/relay';
import { markState } from '../request/state-header';
import type { CacheEntry, IsrRequest, IsrResponse } from '../types';
import type { Captured } from './capture';
import { buildEntry, strongEtag } from './entry';
import { answerFailed } from './failure-answer';
import { PageRender } from './page-render';
import { errorMayBeShared, type RenderFailure } from './render-failures';
import { installResponseConfig } from './response-config';
import { sharedRequestHeaders } from './shared-request';

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
  // The relay's backpressure, past `maxBodySize` only: up to it, the page is kept in memory for
  // the store anyway, so the visitor's response may buffer it too, and a slow (or stalled)
  // visitor never holds back the render that the requests waiting for it and the store need.
  // Past it, nothing is stored: an app waiting for 'drain' waits for the visitor's (its own
  // socket to nowhere drains at once), or — once the visitor is gone — not at all.
  let relayed = 0;
  let backedUp = false;
  const emit = shared.res.emit;
  shared.res.emit = function heldDrain(this: ServerResponse, event: string | symbol, ...args) {
    if (event === 'drain' && backedUp) return false;
    return emit.call(this, event, ...args);
  } as ServerResponse['emit'];
  const drained = () => {
    if (!backedUp) return;
    backedUp = false;
    shared.res.emit('drain');
  };
  res.on('drain', drained);
  res.once('close', drained);

  /** What the visitor gets: still undecided, the shared render relayed, or their own render. */
  let visitor: 'undecided' | 'relay' | 'own' | 'done' = 'undecided';
  /** The relay answers a 304: the body is not sent. */
  let bodiless = false;
  /** The shared render was cut off on purpose: nothing to store, and no failure either. */
  let cutOff: string | undefined;
  /** The response judged at its head: why it may not be stored (`reason`), once known. */
  let atHead: { reason: string | undefined } | undefined;

  /**
   * The render failed (`status` when it answered): a page within `staleIfError` answers the
   * visitor in its place. False when there is none, or the visitor was answered already.
   */
  const staleInstead = (status: number | undefined): boolean => {
    if (visitor !== 'undecided' || res.headersSent) return false;
    if (!answerFailed(engine, req, res, target.key, target.fallback, { status })) return false;
    visitor = 'done';
    return true;
  };

  /** The visitor's own request goes on to the app; with `error`, to its error handling. */
  const ownRender = (reason: string, error?: unknown) => {
    if (visitor !== 'undecided') return;
    visitor = 'own';
    debug('miss: %s rendered for this visitor (%s)', target.url, reason);
    installResponseConfig(res);
    markState(res, 'BYPASS', { reason }, options.cacheStatus);
    // On the next turn: not from inside the cache's render (its `writeHead`/`end`), where a
    // throw of the visitor's own render would land in the other route.
    setImmediate(() => {
      if (res.destroyed) return; // the visitor left: nobody to render for
      if (error === undefined) next();
      else next(error);
    });
  };

  const captured = shared.capture({
    beforeHeaders(wholeBody) {
      const status = shared.res.statusCode;
      const headers = shared.res.getHeaders();
      const policy = shared.policy(headers);
      const { revalidate, maxStale, staleIfError, tags } = policy;
      const reason = shared.uncacheable(status, headers, policy);
      atHead = { reason };
      // Past the deadline the visitor was already answered (and the render is being cut off).
      if (visitor !== 'undecided' || res.headersSent) return;
      const vary = varyNames(headers);
      if (reason !== undefined) {
        engine.noteUncacheable(target.url, reason);
        // The render goes on (it is recorded as failed); the visitor has the stale page.
        if (status >= 500 && staleInstead(status)) return;
        if (status >= 500 && errorMayBeShared(headers)) {
          // Its waiters get the same page, and the requests of the next second too (see
          // cold-flight.ts): `Retry-After` says when it is rendered again.
          relayHead(res, status, headers);
          if (!res.hasHeader('retry-after')) res.setHeader('retry-after', '1');
          markState(res, 'MISS', { forwarded: status }, options.cacheStatus);
          visitor = 'relay';
          return;
        }
        if (
          reason === 'set-cookie' &&
          status < 500 &&
          !carriesCookies(req) &&
          sameVariant(vary, req.headers, requestHeaders)
        ) {
          // A render that sets a cookie has changed something (a session started, a one-time
          // link used): rendering it again for the visitor would do that twice and answer
          // "already used". It was made for this visitor alone, who carries no cookie it could
          // overwrite, so it is theirs — and shared with nobody.
          relayHead(res, status, headers, true);
          markState(res, 'BYPASS', { reason }, options.cacheStatus);
          visitor = 'relay';
          return;
        }
        ownRender(reason);
        // The visitor gets their own render: the shared one is of no use any more (a file
        // streamed to nobody, a query run for nothing), so it is cut off.
        cutOff = reason;
        setImmediate(() => shared.res.destroy());
        return;
      }
      if (!sameVariant(vary, req.headers, requestHeaders)) {
        // The page varies on a header the cache's render did not get as this visitor sent it
        // (say `User-Agent`): it is stored for the requests it matches, and this visitor's own
        // request is rendered for them.
        ownRender(`another variant (vary ${vary.join(', ')})`);
        return;
      }
      // Your code first (listeners, the `cacheControl` builder): should it throw, the visitor's
      // response is still untouched, and their own render goes out clean.
      engine.observer.miss(target.key);
      const control = options.cacheControl?.({
        revalidate,
        maxStale,
        staleIfError,
        age: 0,
        state: 'MISS',
        appCacheControl: headerText(headers['cache-control']) || undefined,
      });
      visitor = 'relay';
      relayHead(res, status, headers);
      // RFC 9211 `stored` only when it is known now: the whole body is here, within
      // `maxBodySize`, in identity coding (a streamed or encoded body may still fail to store).
      const coding = headerText(headers['content-encoding']).trim().toLowerCase();
      const stored = wholeBody !== undefined && (coding === '' || coding === 'identity');
      markState(res, 'MISS', { stored }, options.cacheStatus);
      if (options.cdnTags !== false) {
        setCdnTagHeader(res, tags, options.cdnTags, target.url, engine);
      }
      if (!res.hasHeader('etag') && wholeBody !== undefined)
        res.setHeader('etag', strongEtag(wholeBody));
      if (control !== undefined) res.setHeader('cache-control', control);
      bodiless = status === 200 && answeredNotModified(req, res);
    },
    onBody(chunk) {
      if (visitor !== 'relay' || bodiless || res.destroyed || res.writableEnded) return true;
      relayed += chunk.length;
      if (res.write(chunk) || relayed <= options.maxBodySize) return true;
      backedUp = true;
      return false;
    },
    onEnd() {
      res.off('drain', drained);
      if (visitor !== 'relay') return;
      visitor = 'done';
      if (!res.destroyed && !res.writableEnded) res.end();
    },
    onHookError(error) {
      engine.reporter.error(error, { phase: 'miss', key: target.key });
      // Nothing of this render is stored; the visitor gets their own, if nothing was sent yet.
      if (visitor === 'undecided' && !res.headersSent) ownRender('error in the cache');
      else if (visitor === 'relay' && !res.writableEnded) res.destroy();
    },
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
        if (!(err && staleInstead(undefined))) ownRender(failure ?? 'no route', err || undefined);
        if (!shared.res.headersSent) shared.res.statusCode = err ? 500 : 404;
        shared.res.end();
      });
    }
  } catch (error) {
    failure = `error: ${error instanceof Error ? error.message : String(error)}`;
    if (!staleInstead(undefined)) ownRender(failure, error);
    shared.res.destroy();
  }

  // The shared render hangs: the visitor is told to come back rather than wait for ever (RFC
  // 9110 §15.6.5, as its waiters are, see cold-flight.ts). The render may still end well and
  // be stored; one still running `regenerateTimeout` later is cut off (an Express 4 route
  // whose promise rejected never ends its response), so that the page is tried again.
  const deadline = setTimeout(() => {
    if (visitor === 'undecided') {
      visitor = 'done';
      const failure = target.hung?.() ?? {
        kind: 'timed-out',
        attempt: 1,
        retryAt: options.now() + options.regenerateTimeout,
        answer: undefined,
      };
      // The page's last good version, or the 504; the render may still end and be stored.
      answerFailed(engine, req, res, target.key, target.fallback, { failure, collapsed: false });
    }
    const cutOffLater = setTimeout(() => {
      failure = `the render took longer than ${2 * options.regenerateTimeout} ms`;
      if (visitor === 'relay') {
        visitor = 'done';
        res.destroy();
      }
      shared.res.destroy();
    }, options.regenerateTimeout);
    cutOffLater.unref();
    captured.then(() => clearTimeout(cutOffLater));
  }, options.regenerateTimeout);
  deadline.unref();

  return captured.then(async (result) => {
    clearTimeout(deadline);
    if (visitor === 'relay' && result.incomplete === 'aborted') res.destroy(); // cut off: so is the copy
    // Destroyed before any byte: a failure, unless it was the cache's own cut-off.
    if (visitor === 'undecided' && !(result.incomplete !== undefined && staleInstead(undefined)))
      ownRender(result.incomplete ?? 'no answer');
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
    checkRevalidate(engine, policy.revalidate, `res.isr({ revalidate }) on ${target.url}`);
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
