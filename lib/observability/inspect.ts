import type { Engine } from '../engine';
import type { Regenerator } from '../regeneration/regenerator';
import { waitAtMost } from '../timeout';
import { ageOf, type CacheEntry, isEntry } from '../types';
import { fail } from '../validate';

/** What the cache holds for one page, and in what state: `cache.entry()`, `GET /entry`. */
export interface EntryInfo {
  key: string;
  url: string;
  status: number;
  state: 'fresh' | 'stale' | 'expired';
  /** Why it is stale or expired. */
  reason?: string;
  /** Seconds since the render that produced it started. */
  age: number;
  revalidate: number | false;
  tags: string[];
  /** Bytes of the identity body. */
  size: number;
  /** Stored variants besides identity. */
  encodings: ('br' | 'gzip')[];
  generatedAt: string;
  /** The `instanceId` of the process that rendered it; absent for pages stored before it was recorded. */
  renderedBy?: string;
  /** While a failed regeneration backs off: its error, attempt and the next try. */
  lastError?: { message: string; attempt: number; nextRetryAt: string };
}

export interface EntriesQuery {
  /** Only URLs starting with this. @default '/' */
  prefix?: string;
  /** At most this many entries (1–1000). @default 100 */
  limit?: number;
}

/** A listing stops after this long, even if the store holds more: it is a tool, not a scan job. */
const LISTING_BUDGET_MS = 5000;

/**
 * Reading the cache for people: the state of one page, or of the pages under a prefix. The
 * memory store answers from memory; Redis from the shared tag index (SCAN when it has none);
 * another Keyv store is walked with its iterator. Bounded by `limit` and a time budget.
 */
export class Inspector {
  constructor(
    private readonly engine: Engine,
    private readonly regenerator: Regenerator,
  ) {}

  async entry(path: string): Promise<EntryInfo | undefined> {
    const { url } = this.engine.canonical(path);
    const key = this.engine.keyForUrl(url);
    const found = await this.engine.lookup(key, {});
    return found.entry && this.describe(found.variantKey, found.entry);
  }

  async entries({
    prefix = '/',
    limit = 100,
  }: EntriesQuery = {}): Promise<{ entries: EntryInfo[]; truncated: boolean }> {
    if (typeof prefix !== 'string') fail('entries: prefix', 'a string', prefix);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      fail('entries: limit', 'a whole number from 1 to 1000', limit);
    }
    const deadline = Date.now() + LISTING_BUDGET_MS;
    const entries: EntryInfo[] = [];
    // On Redis, the pages of the index every instance writes (stores/redis/indexed-walk.ts),
    // SCAN when it has none; elsewhere the store's own walk.
    const walk = this.engine.walk(prefix)[Symbol.asyncIterator]();
    try {
      for (;;) {
        // Each step is raced against the budget: a scan through millions of other apps' keys
        // may go a long time without yielding one of ours.
        const step = await waitAtMost(walk.next(), deadline - Date.now());
        if (step === undefined) return { entries, truncated: true };
        if (step.done) return { entries, truncated: false };
        const [key, value] = step.value;
        // Pages of this deploy's version only: another version's are not this process's to show.
        if (!isEntry(value) || value.version !== this.engine.version) continue;
        if (!value.url.startsWith(prefix)) continue;
        if (entries.length >= limit) return { entries, truncated: true }; // one more than fits
        entries.push(await this.describe(key, value));
      }
    } catch (error) {
      // A value the adapter cannot read (another app's key in a Keyv without a namespace)
      // ends its walk: what was found so far is the answer.
      this.engine.reporter.error(error, { phase: 'store' });
      return { entries, truncated: true };
    } finally {
      walk.return?.(undefined).catch(() => {});
    }
  }

  private async describe(key: string, entry: CacheEntry): Promise<EntryInfo> {
    const { options } = this.engine;
    const state = await this.engine.freshness(entry);
    const failure = this.regenerator.failureOf(key);
    const encodings: ('br' | 'gzip')[] = [];
    if (entry.br) encodings.push('br');
    if (entry.gzip) encodings.push('gzip');
    return {
      // Redacted as debug lines are (README, "Debugging"): a URL may carry a token.
      key: this.engine.redactor.redact(key),
      url: this.engine.redactor.redact(entry.url),
      status: entry.status,
      state: state.state,
      reason: state.state === 'fresh' ? undefined : state.reason,
      age: ageOf(entry, options.now()),
      revalidate: entry.revalidate,
      tags: entry.tags,
      size: entry.body.length,
      encodings,
      generatedAt: new Date(entry.generatedAt).toISOString(),
      ...(entry.renderedBy === undefined ? {} : { renderedBy: entry.renderedBy }),
      lastError: failure && {
        message: failure.error,
        attempt: failure.attempt,
        nextRetryAt: new Date(failure.retryAt).toISOString(),
      },
    };
  }
}
