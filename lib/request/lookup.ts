import type { IncomingMessage } from 'node:http';
import { type Freshness, freshness } from '../invalidation/freshness';
import type { MemoryTagClocks, TagClocks } from '../invalidation/tag-clocks';
import { debug } from '../observability/report';
import type { ResolvedOptions } from '../options';
import type { L1 } from '../stores/l1';
import { MemoryStore } from '../stores/memory';
import type { EntryStore } from '../stores/types';
import { type CacheEntry, isEntry, type StoredValue } from '../types';
import { userTag } from './cache-key';
import { headerTags } from './cdn-tags';

/** What one lookup found: the entry (if any) and the key it lives (or would live) at. */
export interface Lookup {
  entry: CacheEntry | undefined;
  /** The key of this request's variant: the URL's key, plus Vary'd header values if any. */
  variantKey: string;
  /** The request headers the URL's responses vary on, as last stored. */
  vary: string[];
  /** The URL's key. */
  key: string;
  /** Found in the in-process copy (L1) rather than the shared store. */
  local: boolean;
  /** The L1 epoch when the lookup began: a copy read in an older epoch is not kept. */
  epoch: number;
}

/** A page, not a Vary record nor a version pointer (what a variant key should hold). */
export function entryOf(value: StoredValue | undefined): CacheEntry | undefined {
  return isEntry(value) ? value : undefined;
}

/** The `vary` of a URL whose responses vary on nothing: shared, never written to. */
const NO_VARY: string[] = Object.freeze([]) as unknown as string[];

/**
 * How a request finds its page: the URL's key, then its variant's when the page varies on
 * request headers (RFC 9111 §4.1), in memory or L1 first and in the shared store otherwise,
 * and how fresh what was found is. The `Engine` is one of these; the fields are its.
 */
export abstract class PageLookups {
  abstract readonly options: ResolvedOptions;
  abstract readonly store: EntryStore;
  abstract readonly clocks: TagClocks;
  abstract readonly version: string | undefined;
  protected abstract readonly l1: L1 | undefined;
  abstract versioned(key: string, version?: string): string;

  async lookup(key: string, headers: IncomingMessage['headers']): Promise<Lookup> {
    const epoch = this.l1?.epoch ?? 0;
    const local = this.peek(key, headers);
    if (local !== undefined) return local;
    const found = await this.find(key, headers);
    if (found.entry === undefined && this.version !== undefined) {
      const earlier = await this.findEarlierVersion(key, headers);
      if (earlier !== undefined) return { ...earlier, key, local: false, epoch };
    }
    return { ...found, key, local: false, epoch };
  }

  /** Where the pointer to the version that last stored the page of `key` (this version's) is. */
  protected latestKeyOf(key: string): string {
    return `isr-latest:${key.slice(this.versioned('').length)}`;
  }

  /**
   * Right after a deploy, this version has no page yet where the previous one had: that page,
   * found through the pointer the last save of the URL left, is served `STALE` (freshness never
   * calls another version's page fresh) while this version renders its own at its own key.
   */
  private async findEarlierVersion(
    key: string,
    headers: IncomingMessage['headers'],
  ): Promise<Pick<Lookup, 'entry' | 'variantKey' | 'vary'> | undefined> {
    const pointer = await this.store.get(this.latestKeyOf(key));
    if (pointer === undefined || !('latest' in pointer) || pointer.latest === this.version)
      return undefined;
    const base = key.slice(this.versioned('').length);
    const theirs = await this.find(this.versioned(base, pointer.latest), headers);
    if (theirs.entry === undefined) return undefined;
    debug('lookup: %s missing, version %s has it', key, pointer.latest);
    // Stored again under this version's key: the variant of the same headers.
    return { ...theirs, variantKey: variantKeyOf(key, theirs.vary, headers) };
  }

  /**
   * The lookup that needs no I/O, or `undefined` when only the shared store can answer. The
   * memory store always answers (found or not); L1 answers when it holds the page. Together
   * with `freshnessNow` it is the whole hot path of a hit: no promise, no await.
   */
  peek(key: string, headers: IncomingMessage['headers']): Lookup | undefined {
    const epoch = this.l1?.epoch ?? 0;
    if (this.l1 !== undefined) {
      const found = this.findNow(key, headers, this.l1);
      return found.entry === undefined ? undefined : { ...found, key, local: true, epoch };
    }
    if (!(this.store instanceof MemoryStore)) return undefined;
    return { ...this.findNow(key, headers, this.store), key, local: false, epoch };
  }

  /**
   * `find` for a tier that answers synchronously (memory, L1), written without closures:
   * it runs on every hit.
   */
  private findNow(
    key: string,
    headers: IncomingMessage['headers'],
    tier: { get(key: string): StoredValue | undefined },
  ): Pick<Lookup, 'entry' | 'variantKey' | 'vary'> {
    const found = tier.get(key);
    if (found === undefined || !isVaryRecord(found)) {
      return { entry: entryOf(found), variantKey: key, vary: NO_VARY };
    }
    const variantKey = variantKeyOf(key, found.vary, headers);
    return { entry: entryOf(tier.get(variantKey)), variantKey, vary: found.vary };
  }

  /** `freshness` for what `peek` found: its clocks (memory, or L1's mirror) answer at once. */
  freshnessNow(entry: CacheEntry, found: Lookup): Freshness {
    const clocks = (found.local && this.l1 ? this.l1.clocks : this.clocks) as MemoryTagClocks;
    return freshness(entry, this.options.now(), clocks.read(clockTags(entry)), this.version);
  }

  /** `findNow` for the shared store: the same Vary record followed, with an await per read. */
  private async find(
    key: string,
    headers: IncomingMessage['headers'],
  ): Promise<Pick<Lookup, 'entry' | 'variantKey' | 'vary'>> {
    const found = await this.store.get(key);
    if (found === undefined || !isVaryRecord(found)) {
      return { entry: entryOf(found), variantKey: key, vary: NO_VARY };
    }
    const variantKey = variantKeyOf(key, found.vary, headers);
    return { entry: entryOf(await this.store.get(variantKey)), variantKey, vary: found.vary };
  }

  /** The entry stored at exactly `variantKey`, if any. */
  async lookupEntry(variantKey: string): Promise<CacheEntry | undefined> {
    return entryOf(await this.store.get(variantKey));
  }

  /**
   * Fresh, stale or expired, from the entry's age and its tags' clocks: the in-process mirror
   * for an L1 copy, the shared clocks otherwise. A shared entry found fresh is copied into L1.
   */
  async freshness(entry: CacheEntry, found?: Lookup): Promise<Freshness> {
    const local = found?.local && this.l1;
    const clocks = local ? this.l1.clocks : this.clocks;
    const times = await clocks.read(clockTags(entry), local ? undefined : entry.storedAt);
    const state = freshness(entry, this.options.now(), times, this.version);
    if (found !== undefined && !found.local && state.state === 'fresh' && this.l1) {
      if (found.vary.length > 0) this.l1.put(found.key, { vary: found.vary }, found.epoch);
      this.l1.put(found.variantKey, entry, found.epoch);
    }
    return state;
  }
}

function isVaryRecord(value: StoredValue): value is { vary: string[] } {
  return 'vary' in value && !('body' in value);
}

/** The URL's key plus the values of the headers it varies on: `\0` cannot occur in a URL. */
export function variantKeyOf(
  key: string,
  vary: readonly string[],
  headers: Record<string, string | string[] | undefined>,
): string {
  let variant = key;
  for (const name of vary) {
    const value = headers[name];
    const text = Array.isArray(value) ? value.join(', ') : (value ?? '');
    variant += `\0${name}=${text.trim().replace(/\s+/g, ' ')}`;
  }
  return variant;
}

const tagCache = new WeakMap<CacheEntry, string[]>();

/** The tags whose clocks decide an entry's freshness: its own and its path's. */
export function clockTags(entry: CacheEntry): string[] {
  let tags = tagCache.get(entry);
  if (tags === undefined) {
    tags = headerTags(entry.url, entry.tags.map(userTag));
    tagCache.set(entry, tags);
  }
  return tags;
}
