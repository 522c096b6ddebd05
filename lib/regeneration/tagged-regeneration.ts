import type { Engine } from '../engine';
import type { RevalidationResult } from '../invalidation/revalidator';
import type { IndexedPage } from '../invalidation/tag-index';
import { debug } from '../observability/report';
import { waitAtMost } from '../timeout';
import type { RegenerateOutcome, Regenerator } from './regenerator';

/** Pages re-rendered at once by `mode: 'regenerate'`, so a popular tag cannot flood the app. */
const REGENERATE_CONCURRENCY = 4;

/** How often a page whose lease another instance holds is checked again. */
const LEASE_POLL_MS = 25;

/**
 * `mode: 'regenerate'`: re-renders every page carrying one of the invalidated tags — those this
 * process knows of (`TagIndex`) and, with Redis, those any instance stored (`RedisPageIndex`) —
 * a few at a time, once across the fleet (the page's lease), and counts what came of them.
 */
export class TaggedRegeneration {
  constructor(
    private readonly engine: Engine,
    private readonly regenerator: Regenerator,
  ) {}

  /**
   * Re-renders the pages carrying any of `clockTags`, `REGENERATE_CONCURRENCY` at a time;
   * resolves with the counts once all are done or `regenerateTimeout` has passed (the rest go
   * on in the background). A page found gone counts in none of them.
   */
  async run(
    clockTags: string[],
  ): Promise<Required<Pick<RevalidationResult, 'regenerated' | 'failed' | 'pending'>>> {
    const { engine } = this;
    const deadline = Date.now() + engine.options.regenerateTimeout;
    const pages = await this.pagesWith(clockTags);
    debug('revalidate: re-rendering %d page(s)', pages.length);
    const done = { regenerated: 0, failed: 0, skipped: 0, deferred: 0 };
    const queue = [...pages];
    const worker = async () => {
      for (let page = queue.shift(); page !== undefined; page = queue.shift()) {
        done[await this.settle(page, deadline)] += 1;
      }
    };
    const workers: Promise<void>[] = [];
    for (let i = 0; i < REGENERATE_CONCURRENCY; i += 1) {
      const work = worker();
      this.regenerator.track(work);
      workers.push(work);
    }
    // A failed lookup or render is reported by `track`; the caller only waits.
    await waitAtMost(Promise.allSettled(workers), Math.max(0, deadline - Date.now()));
    // Counted now: what finishes later is still `pending` in this answer.
    const { regenerated, failed, skipped } = done;
    return { regenerated, failed, pending: pages.length - regenerated - failed - skipped };
  }

  /**
   * The pages to re-render: those this process stored or served, and — with Redis — those
   * any instance stored (an index that cannot be read leaves the first only).
   */
  private async pagesWith(clockTags: string[]): Promise<IndexedPage[]> {
    const found = new Map<string, IndexedPage>();
    for (const page of this.engine.index.pagesWith(clockTags)) found.set(page.variantKey, page);
    const shared = await this.engine.sharedIndex?.pagesWith(clockTags);
    for (const page of shared ?? []) found.set(page.variantKey, page);
    return [...found.values()];
  }

  /**
   * Re-renders one page, once across the instances sharing the store. When another instance
   * holds the page's lease, it is waited for (until `deadline`). Either way, what is stored
   * then must be fresh: a render another instance started before this invalidation stored a
   * page that is already stale, and it is re-rendered here once more. Not fresh by then, the
   * page is `deferred` (pending): served `STALE`, and regenerated on a later request.
   */
  private async settle(page: IndexedPage, deadline: number): Promise<RegenerateOutcome> {
    const { engine } = this;
    for (let attempt = 1; ; attempt += 1) {
      const outcome = await this.regenerator.regenerate(page.key, page.variantKey);
      if (outcome === 'failed' || outcome === 'skipped') return outcome;
      if (outcome === 'deferred' && !(await this.leaseReleased(page.variantKey, deadline)))
        return 'deferred';
      const entry = await engine.lookupEntry(page.variantKey);
      if (entry === undefined) return 'skipped';
      if ((await engine.freshness(entry)).state === 'fresh') return 'regenerated';
      if (attempt === 2) return 'deferred';
    }
  }

  /** Whether nobody holds `variantKey`'s lease any more, checked until `deadline`. */
  private async leaseReleased(variantKey: string, deadline: number): Promise<boolean> {
    while (await this.engine.lock.held(variantKey)) {
      if (Date.now() + LEASE_POLL_MS > deadline) return false;
      await new Promise((resolve) => setTimeout(resolve, LEASE_POLL_MS).unref());
    }
    return true;
  }
}
