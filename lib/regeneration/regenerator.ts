import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { claim } from '../render/claim';
import type { CacheEntry, RequestHandler } from '../types';
import { renderInBackground } from './background-render';

/** First retry after about a second, doubling up to a minute (README, "How it behaves"). */
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;
/** Failure records kept for backoff; the oldest are forgotten past this. */
const MAX_FAILURES = 10_000;
/**
 * Stale-triggered regenerations running at once in this process. Past it, a stale request
 * starts none: its page is still served STALE, and a later request starts the regeneration.
 * (A crawler, or the first visitors after a layout-wide invalidation, would otherwise start
 * one render per page at once.)
 */
export const MAX_CONCURRENT_REGENERATIONS = 8;

/** How an explicit `regenerate()` went (see there). */
export type RegenerateOutcome = 'regenerated' | 'failed' | 'skipped' | 'deferred';

interface Failure {
  attempt: number;
  retryAt: number;
  /** The error's message, for inspection. */
  error: string;
}

/**
 * Background regeneration: re-runs the app for a synthetic anonymous request and replaces the
 * entry when — and only when — the new render succeeded. One regeneration per key at a time
 * in this process (single flight); failures back off; each run has a hard deadline, because
 * an Express 4 route whose promise rejects never ends its response.
 */
export class Regenerator {
  private readonly running = new Map<string, Promise<void>>();
  private readonly failures = new Map<string, Failure>();
  private readonly background = new Set<Promise<void>>();
  private closed = false;

  constructor(private readonly engine: Engine) {}

  /**
   * Starts a regeneration of `entry` (stored at `key`, the URL's key, or at `key`'s variant
   * `variantKey`) unless one is running or backing off after a failure.
   */
  trigger(key: string, variantKey: string, entry: CacheEntry): void {
    if (this.closed || this.running.has(variantKey)) return;
    if (this.running.size >= MAX_CONCURRENT_REGENERATIONS) {
      debug('regenerate: %s waits for a free slot (%d running)', variantKey, this.running.size);
      return;
    }
    const failure = this.failures.get(variantKey);
    if (failure !== undefined && this.engine.options.now() < failure.retryAt) {
      debug(
        'regenerate: %s backing off for %d ms',
        variantKey,
        failure.retryAt - this.engine.options.now(),
      );
      return;
    }
    this.start(key, variantKey, entry);
  }

  /**
   * Regenerates now, asked for explicitly (no backoff). A run already going may have started
   * before the invalidation that asks for this one: it is waited for, and a new run starts
   * unless the page it stored is fresh. Says how it went: `regenerated` (a newer page is
   * stored, by this run or another instance's), `failed` (the old page stays, backing off),
   * `skipped` (no page there any more, or closing) or `deferred` (nothing newer stored: another
   * instance holds the page's lease, or the render was not stored because an invalidation
   * came during it).
   */
  async regenerate(key: string, variantKey: string): Promise<RegenerateOutcome> {
    if (this.closed) return 'skipped';
    const running = this.running.get(variantKey);
    if (running !== undefined) await running;
    const entry = await this.engine.lookupEntry(variantKey);
    if (entry === undefined || this.closed) return 'skipped';
    if (running !== undefined && (await this.engine.freshness(entry)).state === 'fresh')
      return 'regenerated';
    this.failures.delete(variantKey);
    await (this.running.get(variantKey) ?? this.start(key, variantKey, entry));
    if (this.failures.has(variantKey)) return 'failed';
    const stored = await this.engine.lookupEntry(variantKey);
    if (stored === undefined) return 'skipped';
    return stored.generatedAt > entry.generatedAt ? 'regenerated' : 'deferred';
  }

  /** Background work started on behalf of regenerations, for `idle()` to wait for. */
  track(work: Promise<void>): void {
    const tracked = work
      .catch((error) => this.engine.reporter.error(error, { phase: 'regenerate' }))
      .finally(() => this.background.delete(tracked));
    this.background.add(tracked);
  }

  /** Resolves once no regeneration is running (including ones started meanwhile). */
  async idle(): Promise<void> {
    while (this.running.size > 0 || this.background.size > 0) {
      await Promise.allSettled([...this.running.values(), ...this.background]);
    }
  }

  /** Starts no new regeneration, then waits for those in flight. */
  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  private start(key: string, variantKey: string, entry: CacheEntry): Promise<void> {
    const run = this.run(key, variantKey, entry).finally(() => this.running.delete(variantKey));
    this.running.set(variantKey, run);
    return run;
  }

  private async run(key: string, variantKey: string, previous: CacheEntry): Promise<void> {
    const { engine } = this;
    const app = engine.app;
    if (app === undefined) {
      // Backs off like any failure: reported once per window, not on every stale request.
      this.recordFailure(
        variantKey,
        previous.url,
        new Error('no app to regenerate with: pass the `app` option (Connect, node:http)'),
      );
      return;
    }
    await claim<'left' | 'elsewhere' | 'rendered' | 'failed'>(engine, variantKey, {
      // Across instances sharing a store, the lease holder regenerates; the others keep
      // serving the stale page and leave the work to it.
      taken: async () => {
        debug('regenerate: %s left to the instance holding its lease', variantKey);
        return 'left';
      },
      storedMeanwhile: async () => {
        const current = await engine.lookupEntry(variantKey);
        if (current === undefined || current.generatedAt <= previous.generatedAt) return undefined;
        // Another instance regenerated it between our read and our lease.
        debug('regenerate: %s already regenerated elsewhere', variantKey);
        return 'elsewhere';
      },
      render: () => this.renderUnderLease(key, variantKey, previous, app),
    });
  }

  /** Renders `previous` again and stores it (or removes it, no longer cacheable); failures back off. */
  private async renderUnderLease(
    key: string,
    variantKey: string,
    previous: CacheEntry,
    app: RequestHandler,
  ): Promise<'rendered' | 'failed'> {
    const { engine } = this;
    debug('regenerate: %s started', variantKey);
    engine.observer.regenerateStart(variantKey, previous.url);
    const startedAt = performance.now();
    try {
      const result = await renderInBackground(
        engine,
        app,
        previous.url,
        previous.requestHeaders,
        previous.secure,
      );
      if (result.entry === undefined) {
        // The page is no longer cacheable (the app says so now): stop serving the old copy —
        // unless a page rendered after this one started was stored meanwhile.
        const stored = await engine.lookupEntry(variantKey);
        if (stored === undefined || stored.generatedAt <= result.startedAt) {
          debug(
            'regenerate: %s no longer cacheable (%s), entry removed',
            variantKey,
            result.uncacheable,
          );
          await engine.remove(variantKey);
          if (previous.version !== engine.version) await engine.forgetEarlierVersions(key);
        }
      } else {
        const saved = await engine.save(key, result.entry, result.vary);
        // A write the store refused (out of memory, a read-only replica) or could not take
        // left the stale page in place: a failed regeneration, which backs off like any other
        // rather than render again on the very next request.
        if (saved === 'unavailable')
          throw new Error('the store did not take the regenerated page (refused or unreachable)');
        const duration = performance.now() - startedAt;
        debug('regenerate: %s done in %d ms', variantKey, Math.round(duration));
        engine.observer.regenerateSuccess(
          variantKey,
          previous.url,
          duration,
          result.entry.body.length,
        );
      }
      this.failures.delete(variantKey);
      return 'rendered';
    } catch (error) {
      this.recordFailure(variantKey, previous.url, error);
      return 'failed';
    }
  }

  /** The last failure of `variantKey`'s regeneration, while it is backing off. */
  failureOf(variantKey: string): Readonly<Failure> | undefined {
    return this.failures.get(variantKey);
  }

  private recordFailure(key: string, url: string, error: unknown): void {
    const err = error instanceof Error ? error : new Error(String(error));
    const attempt = (this.failures.get(key)?.attempt ?? 0) + 1;
    const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (attempt - 1));
    const retryAt = this.engine.options.now() + delay;
    this.failures.delete(key);
    this.failures.set(key, { attempt, retryAt, error: err.message });
    this.engine.observer.regenerateError(key, url, err, attempt, retryAt);
    if (this.failures.size > MAX_FAILURES) {
      this.failures.delete(this.failures.keys().next().value as string);
    }
    this.engine.reporter.error(error, { phase: 'regenerate', key, attempt, retryAt });
  }
}
