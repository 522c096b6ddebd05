import type { IncomingMessage } from 'node:http';
import { type Freshness, freshness } from './freshness';
import { canonicalUrl, implicitTags, type QueryFilter, queryFilter, userTag } from './key';
import type { ResolvedOptions } from './options';
import { debug, Reporter } from './report';
import { GuardedStore } from './stores/guarded-store';
import { type KeyvLike, KeyvStore } from './stores/keyv-store';
import { KeyvTagClocks } from './stores/keyv-tag-clocks';
import { MemoryStore } from './stores/memory-store';
import { MemoryTagClocks, type TagClocks } from './tag-clocks';
import { TagIndex } from './tag-index';
import type { CacheEntry, RequestHandler, StoredValue } from './types';

/** What one lookup found: the entry (if any) and the key it lives (or would live) at. */
export interface Lookup {
  entry: CacheEntry | undefined;
  /** The key of this request's variant: the URL's key, plus Vary'd header values if any. */
  variantKey: string;
  /** The request headers the URL's responses vary on, as last stored. */
  vary: string[];
}

/**
 * The store as the engine uses it: the memory store answers synchronously; a remote store is
 * guarded (bounded in time, failing open) and says with `false` when a write did not happen.
 */
interface Backend {
  get(key: string): StoredValue | undefined | Promise<StoredValue | undefined>;
  set(key: string, value: StoredValue): unknown;
  delete(key: string): unknown;
}

/**
 * State shared by the request flow, regeneration and revalidation: the options, the store
 * (guarded when remote), the tag clocks, the app to regenerate through.
 */
export class Engine {
  readonly reporter: Reporter;
  readonly store: Backend;
  readonly clocks: TagClocks;
  readonly keepParam: QueryFilter;
  /** Found from the first request Express hands us, unless the `app` option gave it. */
  app: RequestHandler | undefined;
  /** Which cached pages carry which tags, for `mode: 'regenerate'`. */
  readonly index = new TagIndex();
  /** The latest invalidation and the latest render start this process recorded (ms). */
  private lastBump = 0;
  private lastRenderStart = 0;

  constructor(readonly options: ResolvedOptions) {
    this.reporter = new Reporter(options);
    this.keepParam = queryFilter(options.ignoreQuery, options.allowQuery);
    this.app = options.app;
    const given = options.store;
    if (given === undefined || given instanceof MemoryStore) {
      this.store = given ?? new MemoryStore({ maxSize: options.maxSize });
      this.clocks = new MemoryTagClocks();
    } else {
      const guarded = new GuardedStore(new KeyvStore(given as KeyvLike), {
        timeout: options.storeTimeout,
        now: options.now,
        onOutage: (error) => this.reporter.storeOutage(error),
        onRecovery: () => this.reporter.storeRecovered(),
      });
      this.store = guarded;
      this.clocks = new KeyvTagClocks(guarded);
    }
  }

  /**
   * When a render starting now counts as generated. Normally `now()`; but a render that starts
   * after an invalidation in the same millisecond (or under a frozen test clock) must count as
   * newer than it, or it would be born stale.
   */
  renderStart(): number {
    const at = Math.max(this.options.now(), this.lastBump + 1);
    this.lastRenderStart = Math.max(this.lastRenderStart, at);
    return at;
  }

  /**
   * Records an invalidation: one write per tag clock, whatever the number of pages. Its time
   * is never earlier than a render this process already started, so that render is covered.
   */
  async bump(tags: readonly string[], kind: 'stale' | 'expire'): Promise<number> {
    const at = Math.max(this.options.now(), this.lastBump, this.lastRenderStart);
    this.lastBump = at;
    await this.clocks.bump(tags, kind, at);
    return at;
  }

  canonical(rawUrl: string): { path: string; url: string } {
    return canonicalUrl(rawUrl, this.keepParam);
  }

  keyFor(req: IncomingMessage, url: string): string {
    return this.options.key ? this.options.key(req, url) : url;
  }

  async lookup(key: string, headers: IncomingMessage['headers']): Promise<Lookup> {
    const found = await this.store.get(key);
    if (found === undefined || !isVaryRecord(found)) {
      return { entry: found, variantKey: key, vary: [] };
    }
    const variantKey = variantKeyOf(key, found.vary, headers);
    const entry = await this.store.get(variantKey);
    return {
      entry: entry && !isVaryRecord(entry) ? entry : undefined,
      variantKey,
      vary: found.vary,
    };
  }

  /** The entry stored at exactly `variantKey`, if any. */
  async lookupEntry(variantKey: string): Promise<CacheEntry | undefined> {
    const found = await this.store.get(variantKey);
    return found === undefined || isVaryRecord(found) ? undefined : found;
  }

  async freshness(entry: CacheEntry): Promise<Freshness> {
    return freshness(entry, this.options.now(), await this.clocks.read(clockTags(entry)));
  }

  /**
   * Stores an entry under its URL's key — or, when the page varies on request headers, under
   * its variant's key with a Vary record at the URL's key (RFC 9111 §4.1). An entry never
   * replaces one rendered later (a slow regeneration loses to a fresher page).
   */
  async save(key: string, entry: CacheEntry, vary: string[]): Promise<void> {
    let target = key;
    if (vary.length > 0) {
      await this.store.set(key, { vary });
      target = variantKeyOf(key, vary, entry.requestHeaders);
    }
    const current = await this.store.get(target);
    if (
      current !== undefined &&
      !isVaryRecord(current) &&
      current.generatedAt > entry.generatedAt
    ) {
      debug('store: %s kept, a newer render is already stored', target);
      return;
    }
    const ok = await this.store.set(target, entry);
    if (ok !== false) this.index.add({ key, variantKey: target }, clockTags(entry));
    debug(
      'store: %s (%d bytes%s%s)',
      target,
      entry.body.length,
      entry.br ? `, br ${entry.br.length}` : '',
      entry.gzip ? `, gzip ${entry.gzip.length}` : '',
      ok === false ? ' — store unavailable, not kept' : '',
    );
  }
}

export function isVaryRecord(value: StoredValue): value is { vary: string[] } {
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
    const mark = entry.url.indexOf('?');
    const path = mark === -1 ? entry.url : entry.url.slice(0, mark);
    tags = [...implicitTags(path), ...entry.tags.map(userTag)];
    tagCache.set(entry, tags);
  }
  return tags;
}
