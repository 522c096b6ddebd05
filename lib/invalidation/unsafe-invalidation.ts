import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { pageTag } from '../request/cache-key';

/**
 * The methods whose success changes the resource at the target URI (RFC 9110 §9.2.1 calls
 * GET, HEAD, OPTIONS and TRACE safe; RFC 9111 §4.4 has a cache invalidate on the others).
 * Express answers OPTIONS by itself on every routed path, so "not GET or HEAD" would let
 * anyone mark any page stale.
 */
export const INVALIDATING_METHODS: ReadonlySet<string> = new Set([
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
]);

/** One unsafe-method invalidation per path per this many ms; more within it are coalesced. */
const COALESCE_MS = 1000;
/** Paths remembered for coalescing; past this the oldest are forgotten (only a window ends). */
const MAX_PATHS = 10_000;

/**
 * What an anonymous client can buy with unsafe requests is bounded:
 * - a path no page is stored for costs nothing (no clock is written: a flood of POSTs to
 *   distinct paths would otherwise fill the clocks, and the memory store's bounded clocks
 *   would then have to treat every page as stale);
 * - a page is invalidated at most once per second by unsafe requests, however many arrive:
 *   the first at once, the ones within the second after it as one more at its end (so a
 *   change made meanwhile is never missed), so POST+GET pairs cost at most one render a
 *   second per page.
 */
export class UnsafeInvalidation {
  private readonly recent = new Map<string, { until: number; trailing: boolean }>();
  /** Invalidations due at the end of a path's second, cleared by `close()`. */
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly engine: Engine,
    private readonly invalidate: (path: string) => Promise<unknown>,
  ) {}

  /** A `method` request to `path` succeeded. */
  async succeeded(path: string, method: string): Promise<void> {
    if (!(await this.pageStored(path))) {
      debug('invalidate: %s after %s skipped (no page stored)', path, method);
      return;
    }
    const now = performance.now();
    const window = this.recent.get(path);
    if (window !== undefined && now < window.until) {
      if (!window.trailing) {
        window.trailing = true;
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          window.trailing = false;
          window.until = performance.now() + COALESCE_MS;
          this.run(path, method);
        }, window.until - now);
        timer.unref();
        this.timers.add(timer);
      }
      return;
    }
    this.recent.delete(path);
    this.recent.set(path, { until: now + COALESCE_MS, trailing: false });
    if (this.recent.size > MAX_PATHS) this.recent.delete(this.recent.keys().next().value as string);
    this.run(path, method);
  }

  /** The cache closes: invalidations still due are dropped. */
  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
  }

  private run(path: string, method: string): void {
    debug('invalidate: %s after %s', path, method);
    this.invalidate(path).catch((error) =>
      this.engine.reporter.error(error, { phase: 'store-write' }),
    );
  }

  /**
   * Whether a page of `path` may be stored: one this process stored or served (any query
   * variant), or the query-less page in the shared store. A store that cannot answer (it
   * fails open, as every read does) counts as none: the page this misses is one only another
   * instance has seen, and it still goes stale by its window.
   */
  private async pageStored(path: string): Promise<boolean> {
    if (this.engine.index.pagesWith([pageTag(path)]).length > 0) return true;
    return (await this.engine.store.get(this.engine.versioned(path))) !== undefined;
  }
}
