import { EventEmitter } from 'node:events';
import type { RevalidateMode } from '../types';

/** The events of `isr()`, with what each listener receives. */
export interface IsrEvents {
  /** A fresh page was replayed from the cache. `age` in seconds. */
  hit: { key: string; age: number };
  /** A stale page was replayed at once; a regeneration was asked for. */
  stale: { key: string; age: number; reason: string };
  /** The page was rendered for this request (or shared from a render it waited for). */
  miss: { key: string };
  /** The request or its response was not eligible for the cache. */
  bypass: { url: string; reason: string };
  'regenerate:start': { key: string; url: string };
  /** `duration` in ms, `bytes` of the identity body. */
  'regenerate:success': { key: string; url: string; duration: number; bytes: number };
  /** The old page stays; `nextRetryAt` is when the next attempt may start (ms since epoch). */
  'regenerate:error': {
    key: string;
    url: string;
    error: Error;
    attempt: number;
    nextRetryAt: number;
  };
  /** An invalidation: from the methods (`api`), the webhook, or a successful POST/PUT/PATCH/DELETE. */
  revalidate: {
    paths: string[];
    tags: string[];
    mode: RevalidateMode;
    source: 'api' | 'webhook' | 'unsafe-method';
  };
  /** The store failed (reported once per outage). */
  'store:error': { error: Error };
}

export type IsrEventName = keyof IsrEvents;

/** Upper bounds (seconds) of the regeneration-duration histogram's buckets. */
export const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

/** A snapshot of what the cache did since it was created: `cache.stats()`. */
export interface IsrStats {
  requests: { hit: number; stale: number; miss: number; bypass: number };
  /** Bypasses by reason (`method POST`, `set-cookie`, …). */
  bypassReasons: Record<string, number>;
  regenerations: {
    started: number;
    succeeded: number;
    failed: number;
    /** Durations of successful regenerations: count, sum (s) and cumulative buckets (le, s). */
    duration: { count: number; sum: number; buckets: { le: number; count: number }[] };
  };
  revalidations: { stale: number; expire: number; regenerate: number };
  storeErrors: number;
}

/** Distinct bypass reasons kept in the snapshot; more are counted under `other`. */
const MAX_REASONS = 100;

/**
 * Counts what happens and tells listeners. Counting is a few integer increments; an event's
 * payload is only built when somebody listens to it, so an unobserved cache pays nothing more.
 */
export class Observer {
  // Annotated, not inferred: inferred, the type is written into the .d.ts with the type
  // argument this repo's @types/node defaults to (`EventEmitter<[never]>` in @types/node 20),
  // and @types/node 25 and later reject `[never]` as an event map. A bare `EventEmitter`
  // takes the default of whichever @types/node the user has.
  readonly emitter: EventEmitter = new EventEmitter();
  private readonly counts = {
    hit: 0,
    stale: 0,
    miss: 0,
    bypass: 0,
    started: 0,
    succeeded: 0,
    failed: 0,
    storeErrors: 0,
  };
  private readonly reasons = new Map<string, number>();
  private readonly revalidations = { stale: 0, expire: 0, regenerate: 0 };
  private readonly duration = { count: 0, sum: 0, buckets: DURATION_BUCKETS.map(() => 0) };
  /** Extra sinks (Prometheus), told about every counted thing. */
  private readonly sinks: ObserverSink[] = [];

  /** `redact` is applied to the URLs (keys) in event payloads, which often end up in logs. */
  constructor(private readonly redact: (text: string) => string = (text) => text) {
    // An 'error' event would throw without a listener; ours are named otherwise, but keep
    // a listener-less emitter from ever crashing the app.
    this.emitter.on('error', () => {});
  }

  addSink(sink: ObserverSink): void {
    this.sinks.push(sink);
  }

  hit(key: string, age: number): void {
    this.counts.hit += 1;
    for (const sink of this.sinks) sink.request('hit');
    if (this.listening('hit')) this.emitter.emit('hit', { key: this.redact(key), age });
  }

  stale(key: string, age: number, reason: string): void {
    this.counts.stale += 1;
    for (const sink of this.sinks) sink.request('stale');
    if (this.listening('stale')) this.emitter.emit('stale', { key: this.redact(key), age, reason });
  }

  miss(key: string): void {
    this.counts.miss += 1;
    for (const sink of this.sinks) sink.request('miss');
    if (this.listening('miss')) this.emitter.emit('miss', { key: this.redact(key) });
  }

  bypass(url: string, reason: string): void {
    this.counts.bypass += 1;
    const known = this.reasons.has(reason) || this.reasons.size < MAX_REASONS ? reason : 'other';
    this.reasons.set(known, (this.reasons.get(known) ?? 0) + 1);
    for (const sink of this.sinks) sink.request('bypass');
    if (this.listening('bypass')) this.emitter.emit('bypass', { url: this.redact(url), reason });
  }

  regenerateStart(key: string, url: string): void {
    this.counts.started += 1;
    if (this.listening('regenerate:start'))
      this.emitter.emit('regenerate:start', { key: this.redact(key), url: this.redact(url) });
  }

  regenerateSuccess(key: string, url: string, duration: number, bytes: number): void {
    this.counts.succeeded += 1;
    const seconds = duration / 1000;
    this.duration.count += 1;
    this.duration.sum += seconds;
    DURATION_BUCKETS.forEach((le, i) => {
      if (seconds <= le) this.duration.buckets[i] += 1;
    });
    for (const sink of this.sinks) sink.regeneration('success', seconds);
    if (this.listening('regenerate:success')) {
      this.emitter.emit('regenerate:success', {
        key: this.redact(key),
        url: this.redact(url),
        duration,
        bytes,
      });
    }
  }

  regenerateError(
    key: string,
    url: string,
    error: Error,
    attempt: number,
    nextRetryAt: number,
  ): void {
    this.counts.failed += 1;
    for (const sink of this.sinks) sink.regeneration('error');
    if (this.listening('regenerate:error')) {
      this.emitter.emit('regenerate:error', {
        key: this.redact(key),
        url: this.redact(url),
        error,
        attempt,
        nextRetryAt,
      });
    }
  }

  revalidate(event: IsrEvents['revalidate']): void {
    this.revalidations[event.mode] += 1;
    for (const sink of this.sinks) sink.revalidation(event.mode, event.source);
    if (this.listening('revalidate')) this.emitter.emit('revalidate', event);
  }

  storeError(error: Error): void {
    this.counts.storeErrors += 1;
    for (const sink of this.sinks) sink.storeError();
    if (this.listening('store:error')) this.emitter.emit('store:error', { error });
  }

  snapshot(): IsrStats {
    const c = this.counts;
    return {
      requests: { hit: c.hit, stale: c.stale, miss: c.miss, bypass: c.bypass },
      bypassReasons: Object.fromEntries(this.reasons),
      regenerations: {
        started: c.started,
        succeeded: c.succeeded,
        failed: c.failed,
        duration: {
          count: this.duration.count,
          sum: this.duration.sum,
          buckets: DURATION_BUCKETS.map((le, i) => ({ le, count: this.duration.buckets[i] })),
        },
      },
      revalidations: { ...this.revalidations },
      storeErrors: c.storeErrors,
    };
  }

  private listening(name: IsrEventName): boolean {
    return this.emitter.listenerCount(name) > 0;
  }
}

/** Where counted things may also go (the Prometheus bridge implements it). */
export interface ObserverSink {
  request(state: 'hit' | 'stale' | 'miss' | 'bypass'): void;
  regeneration(result: 'success' | 'error', seconds?: number): void;
  revalidation(mode: RevalidateMode, source: string): void;
  storeError(): void;
}
