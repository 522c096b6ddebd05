import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { replay } from '../request/replay';
import { markState } from '../request/state-header';
import type { CacheEntry, IsrRequest, IsrResponse } from '../types';
import { answerFailed } from './failure-answer';
import { Flight, type FlightHome, type Outcome, once } from './flight';
import { HitForPass } from './hit-for-pass';
import { JustRendered } from './just-rendered';
import type { MissTarget } from './miss';
import { RenderFailures } from './render-failures';
import { installResponseConfig } from './response-config';
import { variantMatches } from './variant-match';

/**
 * Cold pages are rendered once in total. In this process, the first request renders and the
 * others wait in its flight's waiting room (single flight), answered together when it is
 * over; across instances, the flight claims the page's lease (see `Flight`).
 */
export class ColdFlights implements FlightHome {
  /** Renders in flight per variant key; a flight stays until its entry is stored. */
  private readonly flights = new Map<string, Flight>();
  /** Pages whose render has finished while their store is still under way. */
  readonly justRendered: JustRendered;
  /** Requests that already waited for a render in front of the app. */
  private readonly waited = new WeakSet<IncomingMessage>();
  /** Background stores and lease releases still running, so `idle()` can wait for them. */
  private readonly storing = new Set<Promise<unknown>>();
  /** Cold pages whose last render failed, backing off. */
  readonly failures: RenderFailures;
  /** Pages found not cacheable, passed straight to the app for a while. */
  readonly passes: HitForPass;

  constructor(readonly engine: Engine) {
    this.failures = new RenderFailures(engine.options.now, engine.options.regenerateTimeout);
    this.passes = new HitForPass(engine.options);
    this.justRendered = new JustRendered(engine);
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
    const { justRendered } = this;
    if (justRendered.answer(req, res, variantKey)) return;
    if (justRendered.has(variantKey) && (await justRendered.answerStored(req, res, variantKey)))
      return;
    if (this.answerFromFailure(req, res, variantKey, target.fallback)) return;
    const pass = this.passes.reason(variantKey, req.headers);
    if (pass !== undefined) {
      this.passOn(res, next, variantKey, pass);
      return;
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
    this.flights.set(variantKey, new Flight(this, variantKey, req, res, next, target));
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
    if (this.justRendered.answer(req, res, variantKey)) return true;
    if (this.answerFromFailure(req, res, variantKey, fallback)) return true;
    const running = this.renderingNow(variantKey);
    if (running === undefined) return false;
    const own = () => {
      this.waited.add(req);
      handOver();
    };
    running.waiting.join((shared) => this.share(req, res, shared, variantKey, own, fallback));
    return true;
  }

  /** An invalidation: pages rendered just now and still being stored are not answered any more. */
  forgetRendered(): void {
    this.justRendered.clear();
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

  track<T>(work: Promise<T>): Promise<T> {
    const tracked = work.finally(() => this.storing.delete(tracked));
    this.storing.add(tracked);
    return tracked;
  }

  isCurrent(flight: Flight): boolean {
    return this.flights.get(flight.variantKey) === flight;
  }

  land(flight: Flight): void {
    if (!this.isCurrent(flight)) return;
    this.flights.delete(flight.variantKey);
    this.justRendered.delete(flight.variantKey);
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
   * answered from `justRendered` — unless an invalidation came meanwhile (`forgetRendered`):
   * then a new request starts a new render rather than get the old one.
   */
  private renderingNow(variantKey: string): Flight | undefined {
    const flight = this.flights.get(variantKey);
    return flight === undefined || flight.waiting.isOpen ? undefined : flight;
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
}
