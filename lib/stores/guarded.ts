import { withTimeout } from '../timeout';
import type { StoredValue } from '../types';
import type { EntryStore } from './types';

export interface GuardOptions {
  /** Milliseconds one store call may take before it counts as failed. */
  timeout: number;
  now: () => number;
  /** Called once when the store starts failing, with the first error of the outage. */
  onOutage: (error: Error) => void;
  /** Called once when a call succeeds again after an outage. */
  onRecovery: () => void;
  /**
   * Called when the store answered but refused a command (out of memory, read-only replica…),
   * once per distinct refusal in a row. Not an outage: reads go on.
   */
  onRefusal?: (error: Error) => void;
  /** Awaited before each call (within its timeout): e.g. until a Redis client is connected. */
  ready?: () => Promise<void>;
}

/** After a failure, calls fail at once for this long; then one call probes the store. */
const COOL_DOWN_MS = 1000;

/** The circuit breaker as `cache.health()` reports it. */
export interface BreakerState {
  /** `closed`: calls go to the store; `open`: they fail at once; `half-open`: one call probes. */
  state: 'closed' | 'open' | 'half-open';
  /** Calls that failed since the store last answered (0 when closed). */
  failures: number;
  /** The latest of those failures: its message and when (ISO 8601). */
  lastFailure?: { message: string; at: string };
}

/**
 * Wraps a remote store so that it can never hold a visitor up: every call is bounded by a
 * timeout, and while the store is failing a circuit breaker skips it altogether (otherwise
 * each request would pay the full timeout during an outage). `get` answers `undefined` on
 * failure and `set`/`delete` report `false`: the middleware renders normally (fails open).
 */
export class GuardedStore implements EntryStore {
  private openUntil = 0;
  private failing = false;
  /** A call is probing the failing store: the others keep failing at once until it settles. */
  private probing = false;
  private lastRefusal: string | undefined;
  /** Failures since the store last answered, and the latest one: read by `breaker`. */
  private failures = 0;
  private lastFailure: { message: string; at: number } | undefined;

  constructor(
    readonly inner: EntryStore,
    private readonly options: GuardOptions,
  ) {}

  async get(key: string): Promise<StoredValue | undefined> {
    const result = await this.attempt(() => this.inner.get(key));
    return result.ok ? result.value : undefined;
  }

  async set(key: string, value: StoredValue, ttlMs?: number): Promise<boolean> {
    return (await this.attempt(() => this.inner.set(key, value, ttlMs))).ok;
  }

  async delete(key: string): Promise<boolean> {
    return (await this.attempt(() => this.inner.delete(key))).ok;
  }

  /** The circuit breaker's state now (read-only: reading it probes nothing). */
  get breaker(): BreakerState {
    if (!this.failing) return { state: 'closed', failures: 0 };
    const waiting = !this.probing && this.options.now() < this.openUntil;
    return {
      state: waiting ? 'open' : 'half-open',
      failures: this.failures,
      lastFailure: this.lastFailure && {
        message: this.lastFailure.message,
        at: new Date(this.lastFailure.at).toISOString(),
      },
    };
  }

  /** Runs `fn` under the same timeout and circuit breaker as the store calls. */
  async attempt<T>(fn: () => Promise<T> | T): Promise<{ ok: true; value: T } | { ok: false }> {
    let probe = false;
    if (this.failing) {
      if (this.probing || this.options.now() < this.openUntil) return { ok: false };
      this.probing = probe = true; // half-open: this call alone tries the store
    }
    try {
      const ready = this.options.ready;
      const value = await withTimeout(
        ready ? ready().then(fn) : fn(),
        this.options.timeout,
        `store call timed out after ${this.options.timeout} ms`,
      );
      this.failures = 0;
      this.lastFailure = undefined;
      if (this.failing) {
        this.failing = false;
        this.options.onRecovery();
      }
      return { ok: true, value };
    } catch (thrown) {
      const error = thrown instanceof Error ? thrown : new Error(String(thrown));
      if (isRefusal(error)) {
        // The store is up and answering: only this command failed. Opening the breaker would
        // also stop the reads that still work (a full Redis still serves its pages).
        // Once per kind of refusal in a row (`OOM`, `READONLY`…): the same refusal of a plain
        // command and of a script differ only past their first word.
        const kind = error.message.split(' ', 1)[0];
        if (kind !== this.lastRefusal) this.options.onRefusal?.(error);
        this.lastRefusal = kind;
        return { ok: false };
      }
      this.openUntil = this.options.now() + COOL_DOWN_MS;
      this.failures += 1;
      this.lastFailure = { message: error.message, at: this.options.now() };
      if (!this.failing) {
        this.failing = true;
        this.options.onOutage(error);
      }
      return { ok: false };
    } finally {
      if (probe) this.probing = false;
    }
  }
}

/**
 * An error the server answered with (node-redis's `ErrorReply`: `OOM command not allowed`,
 * `READONLY`, `MISCONF`…), as opposed to no answer at all (connection refused, closed,
 * timed out), which is what an outage is.
 */
function isRefusal(error: Error): boolean {
  return (
    error.constructor?.name === 'ErrorReply' ||
    /^(OOM|READONLY|MISCONF|NOPERM|NOSCRIPT) /.test(error.message)
  );
}
