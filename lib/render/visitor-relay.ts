import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { downstreamCacheControl } from '../request/cache-control';
import { setCdnTagHeader } from '../request/cdn-tags';
import { carriesCookies, headerText, varyNames } from '../request/eligibility';
import { answeredNotModified, relayHead, sameVariant } from '../request/relay';
import { markState } from '../request/state-header';
import type { IsrRequest, IsrResponse } from '../types';
import { strongEtag } from './entry';
import { answerFailed } from './failure-answer';
import type { MissTarget } from './miss';
import type { PageRender } from './page-render';
import { errorMayBeShared } from './render-failures';
import { installResponseConfig, type PagePolicy } from './response-config';

/**
 * The visitor of a MISS while the cache's own render of their page runs (see `renderMiss`):
 * they get that render relayed as it streams when it may be shared with them, or their own
 * request goes on to the app, or — the render failed — its stale page or its error. Whichever
 * comes first decides; the rest is ignored.
 */
export class VisitorRelay {
  /** What the visitor gets: still undecided, the shared render relayed, their own, or answered. */
  private state: 'undecided' | 'relay' | 'own' | 'done' = 'undecided';
  /** The relay answers a 304: the body is not sent. */
  private bodiless = false;
  private relayed = 0;
  private backedUp = false;
  private readonly drained = () => {
    if (!this.backedUp) return;
    this.backedUp = false;
    this.render.res.emit('drain');
  };

  constructor(
    private readonly engine: Engine,
    private readonly req: IsrRequest,
    private readonly res: IsrResponse,
    private readonly next: (err?: unknown) => void,
    private readonly target: MissTarget,
    private readonly render: PageRender,
  ) {
    // The relay's backpressure, past `maxBodySize` only: up to it, the page is kept in memory
    // for the store anyway, so the visitor's response may buffer it too, and a slow visitor
    // never holds back the render that its waiters and the store need. Past it, nothing is
    // stored: an app waiting for 'drain' waits for the visitor's (its own socket to nowhere
    // drains at once), or — once the visitor is gone — not at all.
    const shared = render.res;
    const emit = shared.emit;
    const relay = this;
    shared.emit = function heldDrain(this: ServerResponse, event: string | symbol, ...args) {
      if (event === 'drain' && relay.backedUp) return false;
      return emit.call(this, event, ...args);
    } as ServerResponse['emit'];
    res.on('drain', this.drained);
    res.once('close', this.drained);
  }

  /** Nothing has been decided for the visitor yet. */
  get undecided(): boolean {
    return this.state === 'undecided';
  }

  /**
   * The render failed (`status` when it answered): a page within `staleIfError` answers the
   * visitor in its place. False when there is none, or the visitor was answered already.
   */
  staleInstead(status?: number): boolean {
    const { req, res, target } = this;
    if (this.state !== 'undecided' || res.headersSent) return false;
    if (!answerFailed(this.engine, req, res, target.key, target.fallback, { status })) return false;
    this.state = 'done';
    return true;
  }

  /** The visitor's own request goes on to the app; with `error`, to its error handling. */
  ownRender(reason: string, error?: unknown): void {
    if (this.state !== 'undecided') return;
    this.state = 'own';
    const { res, next } = this;
    debug('miss: %s rendered for this visitor (%s)', this.target.url, reason);
    installResponseConfig(res);
    markState(res, 'BYPASS', { reason }, this.engine.options.cacheStatus);
    // On the next turn: not from inside the cache's render (its `writeHead`/`end`), where a
    // throw of the visitor's own render would land in the other route.
    setImmediate(() => {
      if (res.destroyed) return; // the visitor left: nobody to render for
      if (error === undefined) next();
      else next(error);
    });
  }

  /**
   * The shared render's head goes out, judged (`reason`: why it may not be stored): what the
   * visitor gets is decided now. Returns the reason when the shared render is cut off for it.
   */
  head(
    status: number,
    headers: OutgoingHttpHeaders,
    policy: PagePolicy,
    reason: string | undefined,
    wholeBody: Buffer | undefined,
  ): string | undefined {
    const { engine, req, res, target } = this;
    const { options } = engine;
    // Past the deadline the visitor was already answered (and the render is being cut off).
    if (this.state !== 'undecided' || res.headersSent) return undefined;
    const vary = varyNames(headers);
    const { requestHeaders } = this.render;
    if (reason !== undefined) {
      engine.noteUncacheable(target.url, reason);
      // The render goes on (it is recorded as failed); the visitor has the stale page.
      if (status >= 500 && this.staleInstead(status)) return undefined;
      if (status >= 500 && errorMayBeShared(headers)) {
        // Its waiters get the same page, and the requests of the next second too (the flight
        // records the failure, flight.ts): `Retry-After` says when it is rendered again.
        relayHead(res, status, headers);
        if (!res.hasHeader('retry-after')) res.setHeader('retry-after', '1');
        markState(res, 'MISS', { forwarded: status }, options.cacheStatus);
        this.state = 'relay';
        return undefined;
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
        this.state = 'relay';
        return undefined;
      }
      this.ownRender(reason);
      // The visitor gets their own render: the shared one is of no use any more (a file
      // streamed to nobody, a query run for nothing), so it is cut off.
      setImmediate(() => this.render.res.destroy());
      return reason;
    }
    if (!sameVariant(vary, req.headers, requestHeaders)) {
      // The page varies on a header the cache's render did not get as this visitor sent it
      // (say `User-Agent`): it is stored for the requests it matches, and this visitor's own
      // request is rendered for them.
      this.ownRender(`another variant (vary ${vary.join(', ')})`);
      return undefined;
    }
    this.relayPage(status, headers, policy, wholeBody);
    return undefined;
  }

  /** Relays a page that may be stored: as it is stored, with the cache's headers (a MISS). */
  private relayPage(
    status: number,
    headers: OutgoingHttpHeaders,
    policy: PagePolicy,
    wholeBody: Buffer | undefined,
  ): void {
    const { engine, req, res, target } = this;
    const { options } = engine;
    const { tags } = policy;
    // Your code first (listeners, the `cacheControl` builder): should it throw, the visitor's
    // response is still untouched, and their own render goes out clean.
    engine.observer.miss(target.key);
    // The same Cache-Control a replay of this page sends (request/cache-control.ts), at age 0.
    const control = downstreamCacheControl(
      options.cacheControl,
      policy,
      0,
      'MISS',
      headerText(headers['cache-control']) || undefined,
    );
    this.state = 'relay';
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
    this.bodiless = status === 200 && answeredNotModified(req, res);
  }

  /** A chunk of the shared render's body; false holds the app back (see the constructor). */
  body(chunk: Buffer): boolean {
    const { res } = this;
    if (this.state !== 'relay' || this.bodiless || res.destroyed || res.writableEnded) return true;
    this.relayed += chunk.length;
    if (res.write(chunk) || this.relayed <= this.engine.options.maxBodySize) return true;
    this.backedUp = true;
    return false;
  }

  /** The app ended the shared render. */
  end(): void {
    const { res } = this;
    res.off('drain', this.drained);
    if (this.state !== 'relay') return;
    this.state = 'done';
    if (!res.destroyed && !res.writableEnded) res.end();
  }

  /** A hook of the capture threw: nothing of this render is stored. */
  hookError(error: unknown): void {
    const { res } = this;
    this.engine.reporter.error(error, { phase: 'miss', key: this.target.key });
    // The visitor gets their own render, if nothing was sent yet.
    if (this.state === 'undecided' && !res.headersSent) this.ownRender('error in the cache');
    else if (this.state === 'relay' && !res.writableEnded) res.destroy();
  }

  /** Past `regenerateTimeout`: a visitor still waiting gets the stale page, or a 504. */
  timedOut(): void {
    if (this.state !== 'undecided') return;
    this.state = 'done';
    const { engine, req, res, target } = this;
    const { options } = engine;
    const failure = target.hung?.() ?? {
      kind: 'timed-out',
      attempt: 1,
      retryAt: options.now() + options.regenerateTimeout,
      answer: undefined,
    };
    answerFailed(engine, req, res, target.key, target.fallback, { failure, collapsed: false });
  }

  /** The shared render is cut off: a relay under way is cut off with it. */
  cutOff(): void {
    if (this.state !== 'relay') return;
    this.state = 'done';
    this.res.destroy();
  }

  /** The shared render is over: a visitor still undecided gets what is left (see `renderMiss`). */
  renderOver(incomplete: string | undefined): void {
    if (this.state === 'relay' && incomplete === 'aborted') this.res.destroy(); // so is the copy
    // Destroyed before any byte: a failure, unless it was the cache's own cut-off.
    if (this.state === 'undecided' && !(incomplete !== undefined && this.staleInstead()))
      this.ownRender(incomplete ?? 'no answer');
  }
}
