import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { replay } from '../request/replay';
import type { CacheEntry, IsrRequest, IsrResponse } from '../types';
import { claim } from './claim';
import { answerFailed } from './failure-answer';
import type { HitForPass } from './hit-for-pass';
import type { JustRendered } from './just-rendered';
import { type MissTarget, renderMiss } from './miss';
import {
  failedRender,
  type RenderFailure,
  type RenderFailures,
  shareableErrorAnswer,
} from './render-failures';
import { awaitOtherInstance, storedElsewhere } from './rendered-elsewhere';
import { WaitingRoom } from './waiting-room';

/**
 * What a render leaves its waiters: the page to share, the failure to answer with, or neither
 * (nothing shareable: personal, another variant, expired meanwhile).
 */
export interface Outcome {
  entry?: CacheEntry;
  failure?: RenderFailure;
}

/** What the flights of a process lend each of theirs (see `ColdFlights`). */
export interface FlightHome {
  readonly engine: Engine;
  readonly failures: RenderFailures;
  readonly passes: HitForPass;
  readonly justRendered: JustRendered;
  /** Background work (stores, lease releases) that `idle()` and `close()` wait for. */
  track<T>(work: Promise<T>): Promise<T>;
  /** Whether `flight` is still its page's flight (an invalidation may have replaced it). */
  isCurrent(flight: Flight): boolean;
  /** The flight is over, its page stored or not: forgotten, if it is still its page's flight. */
  land(flight: Flight): void;
}

/**
 * One cold render in flight and the requests waiting for what it makes. It claims the page
 * (`claim`): an instance that cannot take the lease waits for the holder's entry to appear in
 * the store — for as long as the holder keeps its lease alive, at most `regenerateTimeout` —
 * and renders by itself if none comes.
 */
export class Flight {
  readonly waiting: WaitingRoom<Outcome>;
  /** Settles with the render's outcome once the render is over. */
  readonly result: Promise<Outcome>;
  /**
   * Set once the render ran past `regenerateTimeout`: its waiters were answered then, and until
   * it really ends (or its capture gives up on it) requests are answered from this failure
   * rather than start another render that would hang the same way.
   */
  hung: RenderFailure | undefined;

  constructor(
    private readonly home: FlightHome,
    readonly variantKey: string,
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    target: MissTarget,
  ) {
    const { engine } = home;
    const o = engine.options;
    const handOver = once(next);
    this.waiting = new WaitingRoom<Outcome>(o.regenerateTimeout, (error) =>
      engine.reporter.error(error, { phase: 'miss', key: variantKey }),
    );
    const replayFound = (found: CacheEntry, where: string): Outcome => {
      debug('miss: %s rendered by another instance%s', variantKey, where);
      engine.observer.miss(variantKey);
      home.land(this);
      replay(req, res, found, 'MISS', o.now(), o);
      return { entry: found };
    };
    const render = (hold: (saving: Promise<unknown>) => void) =>
      this.render(req, res, handOver, { ...target, hung: () => this.hung }, hold);
    this.result = claim(engine, variantKey, {
      // Another instance renders it: its page is waited for, and rendered here if none comes.
      taken: async () => {
        const elsewhere = await awaitOtherInstance(engine, target.key, variantKey, req.headers);
        return elsewhere === undefined ? render(() => {}) : replayFound(elsewhere, '');
      },
      storedMeanwhile: async () => {
        const stored = await storedElsewhere(engine, target.key, req.headers);
        return stored === undefined ? undefined : replayFound(stored, ' meanwhile');
      },
      render,
      releasing: (released) => void home.track(released),
    }).catch((error): Outcome => {
      home.land(this);
      engine.reporter.error(error, { phase: 'miss', key: variantKey });
      // Fail open, unless the app already has the request or it was answered.
      if (res.headersSent || res.writableEnded) return {};
      if (!answerFailed(engine, req, res, variantKey, target.fallback, {})) handOver();
      return {};
    });
    // Past `regenerateTimeout` the render counts as failed (RFC 9110 §15.6.5, 504): its waiters
    // are answered now, and nobody starts another render of the page while it still runs.
    const deadline = setTimeout(() => this.timedOut(), o.regenerateTimeout);
    deadline.unref();
    this.result.then((outcome) => {
      clearTimeout(deadline);
      this.waiting.open(outcome);
    });
  }

  private timedOut(): void {
    if (this.waiting.isOpen) return;
    const { engine, failures } = this.home;
    const failure = failures.record(this.variantKey, 'timed-out', undefined);
    this.hung = failure;
    engine.reporter.error(
      new Error(
        `the render took longer than regenerateTimeout (${engine.options.regenerateTimeout} ms): requests for it are answered 504 until it ends, or is cut off another regenerateTimeout later`,
      ),
      { phase: 'miss', key: this.variantKey, attempt: failure.attempt, retryAt: failure.retryAt },
    );
    this.waiting.open({ failure });
  }

  /**
   * Renders live (`renderMiss`) and resolves with what its waiters get; storing goes on in the
   * background, handed to `hold`, and the flight lands once it is over (or at once when there
   * is nothing to store).
   */
  private async render(
    req: IsrRequest,
    res: IsrResponse,
    next: (err?: unknown) => void,
    target: MissTarget,
    hold: (saving: Promise<unknown>) => void,
  ): Promise<Outcome> {
    const { home, variantKey } = this;
    const { engine, failures } = home;
    const { entry, stored, response, uncacheable } = await renderMiss(
      engine,
      req,
      res,
      next,
      target,
    );
    if (uncacheable !== undefined) home.passes.remember(variantKey, uncacheable, req.headers);
    if (stored === undefined) home.land(this);
    else {
      const saving = stored
        .catch((error) => engine.reporter.error(error, { phase: 'store-write', key: target.key }))
        .finally(() => home.land(this));
      hold(home.track(saving));
    }
    if (entry === undefined && failedRender(response)) {
      // Already counted (and its waiters answered) when it ran past the deadline.
      if (this.hung !== undefined) return { failure: this.hung };
      const failure = failures.record(
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
      const url = engine.redactor.redact(target.url);
      // Once per failure, not per request: the backoff holds the others.
      engine.reporter.error(
        new Error(
          response?.incomplete === undefined
            ? `the render of ${url} answered ${response?.status}`
            : `the render of ${url} did not complete`,
        ),
        { phase: 'miss', key: variantKey, attempt: failure.attempt, retryAt: failure.retryAt },
      );
      return { failure };
    }
    failures.clear(variantKey); // the app answered: the next render need not wait
    // An 'expire' that came while this render ran (here or on another instance) forbids
    // serving it to anyone who asked after it: only its own client got it.
    if (entry === undefined || (await engine.freshness(entry)).state === 'expired') return {};
    if (home.isCurrent(this)) home.justRendered.set(variantKey, entry);
    return { entry };
  }
}

/** A `next` that can be called once: the app gets each request at most once. */
export function once(next: (err?: unknown) => void): (err?: unknown) => void {
  let called = false;
  return (err?: unknown) => {
    if (called) return;
    called = true;
    next(err);
  };
}
