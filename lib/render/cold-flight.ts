import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { variantKeyOf } from '../request/lookup';
import { replay } from '../request/replay';
import { markState } from '../request/state-header';
import type { CacheEntry, IsrRequest, IsrResponse } from '../types';
import { claim } from './claim';
import { answerFailed } from './failure-answer';
import { inProcessLock } from './lease';
import { type MissResult, type MissTarget, renderMiss, variantMatches } from './miss';
import {
  failedRender,
  type RenderFailure,
  RenderFailures,
  shareableErrorAnswer,
} from './render-failures';
import { installResponseConfig } from './response-config';
import { WaitingRoom } from './waiting-room';

/** How long an uncacheable page goes straight to the app at most (`revalidate` if shorter). */
const PASS_WINDOW_MS = 60_000;
/** Uncacheable pages remembered; the oldest are forgotten past this (and tried again). */
const MAX_PASSES = 10_000;

/**
 * What a render leaves its waiters: the page to share, the failure to answer with, or neither
 * (nothing shareable: personal, another variant, expired meanwhile).
 */
interface Outcome {
  entry?: CacheEntry;
  failure?: RenderFailure;
}

/** One render in flight and the requests waiting for what it makes. */
interface Flight {
  /** Settles with the render's outcome once the render is over. */
  readonly result: Promise<Outcome>;
  readonly waiting: WaitingRoom<Outcome>;
  /**
   * Set once the render ran past `regenerateTimeout`: its waiters were answered then, and until
   * it really ends (or its capture gives up on it) requests are answered from this failure
   * rather than start another render that would hang the same way.
   */
  hung: RenderFailure | undefined;
}

/**
 * Cold pages are rendered once in total. In this process, the first request renders and the
 * others wait in its flight's waiting room (single flight), answered together when it is over. Across instances, the first request takes the
 * page's lease; an instance that cannot take it waits for the holder's entry to appear in the
 * store — for as long as the holder keeps its lease alive, at most `regenerateTimeout` — and
 * renders by itself if none comes.
 */
export class ColdFlights {
  /** Renders in flight per variant key; a flight stays until its entry is stored. */
  private readonly flights = new Map<string, Flight>();
  /**
   * Pages whose render has finished while their store is still under way (compression):
   * requests for them are answered from the finished page, as hits.
   */
  private readonly finished = new Map<string, CacheEntry>();
  /** Requests that already waited for a render in front of the app. */
  private readonly waited = new WeakSet<IncomingMessage>();
  /** Background stores and lease releases still running, so `idle()` can wait for them. */
  private readonly storing = new Set<Promise<void>>();
  /** Cold pages whose last render failed, backing off. */
  private readonly failures: RenderFailures;
  /** Pages found not cacheable, passed straight to the app until `until` (see `rememberPass`). */
  private readonly passes = new Map<
    string,
    { until: number; reason: string; vary: string[]; variant: string }
  >();

  constructor(private readonly engine: Engine) {
    this.failures = new RenderFailures(engine.options.now, engine.options.regenerateTimeout);
  }

  /** Whether a render or a store is under way (a hung render may never end: see `idle()`). */
  get busy(): boolean {
    return this.flights.size > 0 || this.storing.size > 0;
  }

  async settled(): Promise<void> {
    await Promise.allSettled([...this.storing, ...[...this.flights.values()].map((f) => f.result)]);
  }

  async serve(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    variantKey: string,
    target: MissTarget,
  ): Promise<void> {
    if (this.answerJustRendered(req, res, variantKey)) return;
    if (this.finished.has(variantKey) && (await this.answerJustStored(req, res, variantKey)))
      return;
    if (this.answerFromFailure(req, res, variantKey, target.fallback)) return;
    const pass = this.passes.get(variantKey);
    if (pass !== undefined) {
      if (this.engine.options.now() >= pass.until) {
        this.passes.delete(variantKey);
      } else if (variantKeyOf('', pass.vary, req.headers) === pass.variant) {
        this.passOn(res, next, variantKey, pass.reason);
        return;
      }
    }
    const running = this.renderingNow(variantKey);
    if (running !== undefined) {
      // A waiter's own request goes to the app when the render cannot be shared (personal,
      // another variant); and at once when it already waited in front of the app
      // (`joinBeforeApp`): nobody waits for somebody else's render twice. A render that failed
      // or hung is not repeated by every waiter: they get its answer (`answerFailed`).
      const own = () => this.passOn(res, once(next), variantKey, 'not shareable');
      if (this.waited.has(req)) own();
      else
        running.waiting.join((shared) =>
          this.share(req, res, shared, variantKey, own, target.fallback),
        );
      return;
    }
    debug('miss: %s', variantKey);
    const { options: o } = this.engine;
    const handOver = once(next);
    const forget = () => {
      if (this.flights.get(variantKey) === flight) {
        this.flights.delete(variantKey);
        this.finished.delete(variantKey);
      }
    };
    const waiting = new WaitingRoom<Outcome>(o.regenerateTimeout, (error) =>
      this.engine.reporter.error(error, { phase: 'miss', key: variantKey }),
    );
    let flight: Flight | undefined;
    const replayFound = (found: CacheEntry, where: string): Outcome => {
      debug('miss: %s rendered by another instance%s', variantKey, where);
      this.engine.observer.miss(variantKey);
      forget();
      replay(req, res, found, 'MISS', o.now(), o);
      return { entry: found };
    };
    const renderHere = async (hold: (saving: Promise<unknown>) => void): Promise<Outcome> => {
      const { entry, response } = await this.render(
        req,
        res,
        handOver,
        variantKey,
        { ...target, hung: () => flight?.hung },
        forget,
        hold,
      );
      if (entry === undefined && failedRender(response)) {
        // Already counted (and its waiters answered) when it ran past the deadline.
        if (flight?.hung !== undefined) return { failure: flight.hung };
        const failure = this.failures.record(
          variantKey,
          'failed',
          response && shareableErrorAnswer(response),
        );
        debug(
          'miss: %s failed (%s), backing off until %d',
          variantKey,
          response?.status,
          failure.retryAt,
        );
        // Once per failure, not per request: the backoff holds the others.
        this.engine.reporter.error(
          new Error(
            response?.incomplete === undefined
              ? `the render of ${this.engine.redactor.redact(target.url)} answered ${response?.status}`
              : `the render of ${this.engine.redactor.redact(target.url)} did not complete`,
          ),
          { phase: 'miss', key: variantKey, attempt: failure.attempt, retryAt: failure.retryAt },
        );
        return { failure };
      }
      this.failures.clear(variantKey); // the app answered: the next render need not wait
      // An 'expire' that came while this render ran (here or on another instance) forbids
      // serving it to anyone who asked after it: only its own client got it.
      if (entry === undefined || (await this.engine.freshness(entry)).state === 'expired')
        return {};
      if (this.flights.get(variantKey) === flight) this.finished.set(variantKey, entry);
      return { entry };
    };
    const result = claim(this.engine, variantKey, {
      // Another instance renders it: its page is waited for, and rendered here if none comes.
      taken: async () => {
        const elsewhere = await this.awaitOtherInstance(target.key, variantKey, req.headers);
        return elsewhere === undefined ? renderHere(() => {}) : replayFound(elsewhere, '');
      },
      storedMeanwhile: async () => {
        const stored = await this.storedElsewhere(target.key, req.headers);
        return stored === undefined ? undefined : replayFound(stored, ' meanwhile');
      },
      render: renderHere,
      // Waited for by `idle()` and `close()`: a store closed after them must not cut it off.
      releasing: (released) => {
        const tracked = released.finally(() => this.storing.delete(tracked));
        this.storing.add(tracked);
      },
    }).catch((error): Outcome => {
      forget();
      this.engine.reporter.error(error, { phase: 'miss', key: variantKey });
      // Fail open, unless the app already has the request or it was answered.
      if (res.headersSent || res.writableEnded) return {};
      if (!answerFailed(this.engine, req, res, variantKey, target.fallback, {})) handOver();
      return {};
    });
    // Past `regenerateTimeout` the render counts as failed (RFC 9110 §15.6.5, 504): its waiters
    // are answered now, and nobody starts another render of the page while it still runs.
    const deadline = setTimeout(() => {
      if (flight === undefined || waiting.isOpen) return;
      const failure = this.failures.record(variantKey, 'timed-out', undefined);
      flight.hung = failure;
      this.engine.reporter.error(
        new Error(
          `the render took longer than regenerateTimeout (${o.regenerateTimeout} ms): requests for it are answered 504 until it ends, or is cut off another regenerateTimeout later`,
        ),
        { phase: 'miss', key: variantKey, attempt: failure.attempt, retryAt: failure.retryAt },
      );
      waiting.open({ failure });
    }, o.regenerateTimeout);
    deadline.unref();
    flight = { result, waiting, hung: undefined };
    this.flights.set(variantKey, flight);
    result.then((outcome) => {
      clearTimeout(deadline);
      waiting.open(outcome);
    });
  }

  /**
   * For `handler(app)`, before the app sees the request: a page rendered just now is answered,
   * and a request for a page being rendered waits for it here, without the cost of the app's
   * routing (which is most of what a herd of waiters costs). False when there is no such
   * render; `handOver` gives the request to the app when the render cannot be shared with it.
   */
  joinBeforeApp(
    req: IncomingMessage,
    res: ServerResponse,
    variantKey: string,
    handOver: () => void,
    fallback?: CacheEntry,
  ): boolean {
    if (this.answerJustRendered(req, res, variantKey)) return true;
    if (this.answerFromFailure(req, res, variantKey, fallback)) return true;
    const running = this.renderingNow(variantKey);
    if (running === undefined) return false;
    running.waiting.join((shared) =>
      this.share(
        req,
        res,
        shared,
        variantKey,
        () => {
          this.waited.add(req);
          handOver();
        },
        fallback,
      ),
    );
    return true;
  }

  /**
   * A page whose render is hung, or failed and is backing off, is answered from that failure
   * without rendering — or with `fallback`, its last good version within `staleIfError`: a
   * herd on a failing page costs one render per backoff window, not one per request.
   */
  private answerFromFailure(
    req: IncomingMessage,
    res: ServerResponse,
    variantKey: string,
    fallback: CacheEntry | undefined,
  ): boolean {
    const failure = this.flights.get(variantKey)?.hung ?? this.failures.active(variantKey);
    if (failure === undefined) return false;
    return answerFailed(this.engine, req, res, variantKey, fallback, { failure });
  }

  /**
   * The flight whose render is still running. Once it is over its page is being stored and is
   * answered from `finished` — unless an invalidation came meanwhile (`forgetRendered`): then a
   * new request starts a new render rather than get the old one.
   */
  private renderingNow(variantKey: string): Flight | undefined {
    const flight = this.flights.get(variantKey);
    return flight === undefined || flight.waiting.isOpen ? undefined : flight;
  }

  /** An invalidation: pages rendered just now and still being stored are not answered any more. */
  forgetRendered(): void {
    this.finished.clear();
    this.passes.clear(); // and a page that was not cacheable may be now
  }

  /** Whether a render of `variantKey` is in flight in this process. */
  rendering(variantKey: string): boolean {
    return this.flights.has(variantKey);
  }

  /** Settles once the render of `variantKey` in flight, if any, is over. */
  async renderOver(variantKey: string): Promise<void> {
    await this.flights.get(variantKey)?.result;
  }

  /** The visitor's own request goes on to the app, untouched: nothing of it is stored. */
  private passOn(
    res: IsrResponse,
    next: (err?: unknown) => void,
    variantKey: string,
    reason: string,
  ): void {
    debug('bypass: %s (%s)', variantKey, reason);
    this.engine.observer.bypass(variantKey, reason);
    installResponseConfig(res);
    markState(res, 'BYPASS', { reason }, this.engine.options.cacheStatus);
    next();
  }

  /**
   * A page found not cacheable is not rendered apart again for a while (Varnish's
   * hit-for-pass): its visitors go straight to the app, so an uncacheable URL costs its
   * visitors' own renders, plus one shared render per window.
   */
  private rememberPass(
    variantKey: string,
    uncacheable: { reason: string; vary: string[] },
    headers: IncomingMessage['headers'],
  ): void {
    const { revalidate, now } = this.engine.options;
    const window =
      revalidate === false ? PASS_WINDOW_MS : Math.min(PASS_WINDOW_MS, revalidate * 1000);
    this.passes.delete(variantKey);
    // Only for the variant that proved it: one `Accept: application/json` must not make the
    // HTML of a `Vary: Accept` page go straight to the app for everyone.
    const { reason, vary } = uncacheable;
    this.passes.set(variantKey, {
      until: now() + window,
      reason,
      vary,
      variant: variantKeyOf('', vary, headers),
    });
    if (this.passes.size > MAX_PASSES)
      this.passes.delete(this.passes.keys().next().value as string);
  }

  /**
   * A page whose render finished while it is being stored is answered as a hit — at once with
   * the memory store, where every invalidation clears `finished` (`forgetRendered`). With a
   * shared store another instance may invalidate it meanwhile, which only the shared clocks
   * tell: `answerJustStored` checks them first.
   */
  private answerJustRendered(
    req: IncomingMessage,
    res: ServerResponse,
    variantKey: string,
  ): boolean {
    if (!this.engine.isLocalStore) return false;
    const done = this.finished.get(variantKey);
    if (done === undefined || !variantMatches(done, req.headers)) return false;
    this.replayJustRendered(req, res, done, variantKey);
    return true;
  }

  /**
   * `answerJustRendered` for a shared store: the page is answered only while it is fresh by the
   * shared tag clocks, so that an `expire` accepted on any instance holds for the next request
   * here too (README, "Running many instances").
   */
  private async answerJustStored(
    req: IncomingMessage,
    res: ServerResponse,
    variantKey: string,
  ): Promise<boolean> {
    if (this.engine.isLocalStore) return false;
    const done = this.finished.get(variantKey);
    if (done === undefined || !variantMatches(done, req.headers)) return false;
    if ((await this.engine.freshness(done)).state !== 'fresh') {
      if (this.finished.get(variantKey) === done) this.finished.delete(variantKey);
      return false;
    }
    this.replayJustRendered(req, res, done, variantKey);
    return true;
  }

  private replayJustRendered(
    req: IncomingMessage,
    res: ServerResponse,
    done: CacheEntry,
    variantKey: string,
  ): void {
    debug('hit: %s (rendered just now, being stored)', variantKey);
    this.engine.observer.hit(variantKey, 0);
    replay(req, res, done, 'HIT', this.engine.options.now(), this.engine.options);
  }

  /**
   * Answers a waiter with the render it waited for, or with its failure (a render that failed
   * or ran past `regenerateTimeout`: `undefined`), or calls `otherwise` when it cannot share it.
   */
  private share(
    req: IncomingMessage,
    res: ServerResponse,
    shared: Outcome | undefined,
    variantKey: string,
    otherwise: () => void,
    fallback: CacheEntry | undefined,
  ): void {
    const { options } = this.engine;
    if (shared === undefined || shared.failure !== undefined) {
      const failure = shared?.failure ??
        this.flights.get(variantKey)?.hung ?? {
          kind: 'timed-out',
          attempt: 0,
          retryAt: options.now() + options.regenerateTimeout,
          answer: undefined,
        };
      debug('miss: %s: the render it waited for failed', variantKey);
      answerFailed(this.engine, req, res, variantKey, fallback, { failure });
      return;
    }
    const entry = shared.entry;
    if (entry === undefined || !variantMatches(entry, req.headers)) {
      otherwise();
      return;
    }
    debug('miss: %s served from the render it waited for', variantKey);
    this.engine.observer.miss(variantKey);
    replay(req, res, entry, 'MISS', options.now(), options, true);
  }

  /**
   * Renders live and resolves with the shareable entry (or the response, when it was not
   * stored); storing goes on in the background and `done` runs once it is over (or at once
   * when there is nothing to store).
   */
  private async render(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    variantKey: string,
    target: MissTarget,
    done: () => void,
    hold: (saving: Promise<unknown>) => void,
  ): Promise<Pick<MissResult, 'entry' | 'response'>> {
    const { entry, stored, response, uncacheable } = await renderMiss(
      this.engine,
      req,
      res,
      next,
      target,
    );
    // A 429 is the app (or a rate limiter before isr()) refusing the cache's own request for
    // now, not the page saying it may not be cached: it is tried again on the next request.
    if (uncacheable !== undefined && uncacheable.reason !== 'status 429')
      this.rememberPass(variantKey, uncacheable, req.headers);
    if (stored === undefined) {
      done();
    } else {
      const tracked = stored
        .catch((error) =>
          this.engine.reporter.error(error, { phase: 'store-write', key: target.key }),
        )
        .finally(() => {
          this.storing.delete(tracked);
          done();
        });
      this.storing.add(tracked);
      hold(tracked);
    }
    return { entry, response };
  }

  /** A fresh entry for this request in the shared store, if the lock is shared at all. */
  private async storedElsewhere(
    key: string,
    headers: IncomingMessage['headers'],
  ): Promise<CacheEntry | undefined> {
    if (this.engine.lock === inProcessLock) return undefined; // one process: nobody else stores
    const found = await this.engine.lookup(key, headers);
    if (found.entry === undefined || !variantMatches(found.entry, headers)) return undefined;
    const state = await this.engine.freshness(found.entry, found);
    return state.state === 'fresh' ? found.entry : undefined;
  }

  /** Polls the store for the entry another instance is rendering, while it holds the lease. */
  private async awaitOtherInstance(
    key: string,
    variantKey: string,
    headers: IncomingMessage['headers'],
  ): Promise<CacheEntry | undefined> {
    const { engine } = this;
    const deadline = Date.now() + engine.options.regenerateTimeout;
    for (let delay = 10; Date.now() < deadline; delay = Math.min(delay * 2, 200)) {
      await new Promise((resolve) => setTimeout(resolve, delay).unref());
      const holderAlive = await engine.lock.held(variantKey);
      const found = await engine.lookup(key, headers);
      if (found.entry !== undefined && variantMatches(found.entry, headers)) {
        const state = await engine.freshness(found.entry, found);
        if (state.state !== 'expired') return found.entry;
      }
      if (!holderAlive) return undefined; // finished without a shareable page, or died
    }
    return undefined;
  }
}

/** A `next` that can be called once: the app gets each request at most once. */
function once(next: (err?: unknown) => void): (err?: unknown) => void {
  let called = false;
  return (err?: unknown) => {
    if (called) return;
    called = true;
    next(err);
  };
}
