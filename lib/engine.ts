import type { IncomingMessage } from 'node:http';
import { type Freshness, freshness, usefulLifeMs } from './invalidation/freshness';
import type { MemoryTagClocks, TagClocks } from './invalidation/tag-clocks';
import { TagIndex } from './invalidation/tag-index';
import { Observer } from './observability/observer';
import { prometheusSink } from './observability/prometheus';
import { Redactor } from './observability/redact';
import { debug, Reporter } from './observability/report';
import { warnOnce } from './observability/warnings';
import type { ResolvedOptions } from './options';
import type { Lock } from './render/lease';
import {
  canonicalUrl,
  implicitTags,
  type QueryFilter,
  queryFilter,
  userTag,
} from './request/cache-key';
import type { L1 } from './stores/l1';
import { MemoryStore } from './stores/memory';
import type { CacheEvent, RedisEvents } from './stores/redis/events';
import { type Backend, openTiers, type Walk } from './stores/tiers';
import { type CacheEntry, isEntry, type RequestHandler, type StoredValue } from './types';

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

/** What `save` did: stored it, kept a newer entry already there, or could not reach the store. */
export type SaveOutcome = 'stored' | 'newer-kept' | 'unavailable';

/** A page, not a Vary record nor a version pointer (what a variant key should hold). */
function entryOf(value: StoredValue | undefined): CacheEntry | undefined {
  return isEntry(value) ? value : undefined;
}

/** How much longer a page's tag clocks are held than the page: its write may come late. */
const CLOCK_HOLD_MARGIN_MS = 60_000;

/** The `vary` of a URL whose responses vary on nothing: shared, never written to. */
const NO_VARY: string[] = Object.freeze([]) as unknown as string[];

/** How long a render lease lasts between renewals: a dead holder blocks others this long at most. */
export const LEASE_TTL_MS = 5000;

/**
 * State shared by the request flow, regeneration and revalidation: the options, the store
 * (guarded when remote), the tag clocks, the lock and — with Redis — the in-process copy (L1)
 * and the events that keep it coherent.
 */
export class Engine {
  readonly reporter: Reporter;
  readonly store: Backend;
  /** Walks the stored values, for inspection. */
  readonly walk: Walk;
  readonly clocks: TagClocks;
  readonly lock: Lock;
  readonly keepParam: QueryFilter;
  /** Found from the first request Express hands us, unless the `app` option gave it. */
  app: RequestHandler | undefined;
  /** The deploy `version`, with a shared store (the memory store starts empty anyway). */
  readonly version: string | undefined;
  /** What URLs are cleaned of before they reach debug lines, events and `onError`. */
  readonly redactor = new Redactor();
  /** Counts and events: `cache.stats()`, `cache.on(...)`. */
  readonly observer = new Observer((text) => this.redactor.redact(text));
  /** Which cached pages carry which tags, for `mode: 'regenerate'`. */
  readonly index = new TagIndex();
  private readonly l1: L1 | undefined;
  private readonly events: RedisEvents | undefined;
  /** A store `isr()` created itself (from a URL), closed by `close()`. */
  private readonly owned: { close(): Promise<void> } | undefined;
  private readonly canonicalMemo = new Map<string, { path: string; url: string }>();
  /** The latest invalidation and the latest render start this process recorded (ms). */
  private lastBump = 0;
  private lastRenderStart = 0;

  constructor(readonly options: ResolvedOptions) {
    this.reporter = new Reporter(
      options,
      (error) => this.observer.storeError(error),
      (text) => this.redactor.redact(text),
    );
    if (options.metrics !== undefined) this.observer.addSink(prometheusSink(options.metrics));
    this.keepParam = queryFilter(options.ignoreQuery, options.allowQuery);
    this.app = options.app;
    const tiers = openTiers(options, this.reporter);
    this.store = tiers.store;
    this.walk = tiers.walk;
    this.clocks = tiers.clocks;
    this.lock = tiers.lock;
    this.l1 = tiers.l1;
    this.events = tiers.events;
    this.owned = tiers.owned;
    this.version = this.isLocalStore ? undefined : options.version;
  }

  /** Starts what runs in the background (the L1 events); idempotent. */
  start(): void {
    this.events?.start();
  }

  /** Stops the events and closes a store `isr()` opened itself; a store passed in stays open. */
  async close(): Promise<void> {
    this.redactor.release();
    await this.events?.close();
    await this.owned?.close();
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
   * Records an invalidation: one write per tag clock, whatever the number of pages, then an
   * event so that every instance's L1 applies it. Its time is never earlier than a render this
   * process already started, so that render is covered.
   */
  async bump(tags: readonly string[], kind: 'stale' | 'expire'): Promise<number> {
    const at = Math.max(this.options.now(), this.lastBump, this.lastRenderStart);
    this.lastBump = at;
    await this.clocks.bump(tags, kind, at);
    this.l1?.bump(tags, kind, at);
    await this.broadcast({ type: 'bump', tags: [...tags], kind, at });
    return at;
  }

  /** Whether pages live in this process only (the memory store). */
  get isLocalStore(): boolean {
    return this.store instanceof MemoryStore;
  }

  /** A warning with a stable code, printed once per process unless silenced. */
  warn(code: string, message: string): void {
    warnOnce(this.options.logger, code, message, this.options.silence);
  }

  /**
   * Keeps `secret` (the webhook router's) out of debug lines, events and `onError` contexts,
   * wherever a URL carries it. Internal: the router calls it through `PROTECT_SECRET`.
   */
  protectSecret(secret: string): void {
    this.redactor.protect(secret);
  }

  /** A response the cache may not store: counted, logged, and explained once when it is a cookie. */
  noteUncacheable(url: string, reason: string): void {
    debug('bypass: %s (%s)', url, reason);
    this.observer.bypass(url, reason);
    if (reason.startsWith('reads ')) {
      const header = reason.slice('reads '.length).replace(/ without Vary$/, '');
      this.warn(
        'ISR_UNKEYED_HEADER',
        `${url} ${reason}: a page shaped by one visitor's ${header} would be served to everyone, so it is not cached. If the page depends on it, send Vary: ${header} (res.vary('${header}')), and each value is cached apart; else stop reading it.`,
      );
    } else if (reason === 'set-cookie') {
      this.warn(
        'ISR_SET_COOKIE',
        `${this.redactor.redact(url)} sets a cookie, so it is never cached (a cookie is personal; a cached page is shared). Set cookies on routes isr() does not cache, or client-side.`,
      );
    }
  }

  /**
   * A stored render looked for the Cookie header: its page is kept from requests carrying
   * cookies. Without `sessionCookies`, that is every request with any cookie: say so once.
   */
  noteCookiesRead(url: string): void {
    debug('render: %s read the Cookie header (not replayed to requests carrying cookies)', url);
    if (this.options.sessionCookies !== undefined) return;
    this.warn(
      'ISR_COOKIES_READ',
      `the render of ${url} read the Cookie header (the route, cookie-parser or express-session): its page is stored for visitors without cookies, but a request carrying any cookie gets its own render instead. If only some cookies make a page personal, name them, e.g. isr({ sessionCookies: ['connect.sid'] }), and visitors with other cookies (analytics, consent) get HITs.`,
    );
  }

  /** The canonical path and URL of a request-target; memoised, as the same URLs come back. */
  canonical(rawUrl: string): { path: string; url: string } {
    let canonical = this.canonicalMemo.get(rawUrl);
    if (canonical === undefined) {
      canonical = canonicalUrl(rawUrl, this.keepParam);
      // Bounded against clients sending endless distinct URLs: start over when full.
      if (this.canonicalMemo.size >= 10_000) this.canonicalMemo.clear();
      this.canonicalMemo.set(rawUrl, canonical);
    }
    return canonical;
  }

  /**
   * The store key of a request's page: the `key` option's (the URL by default), behind this
   * deploy's version when there is one, so that each version keeps its own pages.
   */
  keyFor(req: IncomingMessage, url: string): string {
    return this.versioned(this.options.key ? this.options.key(req, url) : url);
  }

  /** `keyFor` of a request the cache makes itself (inspection, prerender): no visitor headers. */
  keyForUrl(url: string, headers: IncomingMessage['headers'] = {}): string {
    return this.keyFor({ method: 'GET', url, headers } as IncomingMessage, url);
  }

  /** `key` as `version` (default: this one) stores it. */
  versioned(key: string, version = this.version): string {
    return version === undefined ? key : `v:${version}:${key}`;
  }

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

  /**
   * Right after a deploy, this version has no page yet where the previous one had: that page,
   * found through the pointer the last save of the URL left, is served `STALE` (freshness never
   * calls another version's page fresh) while this version renders its own at its own key.
   */
  private async findEarlierVersion(
    key: string,
    headers: IncomingMessage['headers'],
  ): Promise<Pick<Lookup, 'entry' | 'variantKey' | 'vary'> | undefined> {
    const own = this.versioned('');
    const base = key.slice(own.length);
    const pointer = await this.store.get(`isr-latest:${base}`);
    if (pointer === undefined || !('latest' in pointer) || pointer.latest === this.version)
      return undefined;
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

  /** Removes the entry at `variantKey` everywhere. */
  async remove(variantKey: string): Promise<void> {
    await this.store.delete(variantKey);
    this.l1?.drop(variantKey);
    await this.broadcast({ type: 'delete', key: variantKey });
  }

  /**
   * Stores an entry under its URL's key — or, when the page varies on request headers, under
   * its variant's key with a Vary record at the URL's key (RFC 9111 §4.1). An entry never
   * replaces one rendered later (a slow regeneration loses to a fresher page).
   */
  async save(key: string, entry: CacheEntry, vary: string[]): Promise<SaveOutcome> {
    let target = key;
    const epoch = this.l1?.epoch ?? 0;
    // In a shared store every key lives as long as the page may be of use, and no longer
    // (README, "Running many instances"); the memory store keeps to its byte budget instead.
    const ttl = this.isLocalStore ? undefined : usefulLifeMs(entry);
    if (ttl !== undefined) {
      // The clocks that judge the page first: it is never stored without them (see
      // stores/redis/tag-clocks.ts), and they outlive it.
      const at = this.options.now();
      const held = await this.clocks.hold?.(clockTags(entry), at, ttl + CLOCK_HOLD_MARGIN_MS);
      if (held === false) {
        debug('store: %s not kept, its tag clocks could not be written', key);
        return 'unavailable';
      }
      entry.storedAt = at;
    }
    if (vary.length > 0) {
      await this.store.set(key, { vary }, ttl);
      this.l1?.put(key, { vary }, epoch);
      target = variantKeyOf(key, vary, entry.requestHeaders);
    }
    const current = entryOf(await this.store.get(target));
    if (current !== undefined && current.generatedAt > entry.generatedAt) {
      debug('store: %s kept, a newer render is already stored', target);
      return 'newer-kept';
    }
    const ok = await this.store.set(target, entry, ttl);
    if (ok !== false) {
      this.index.add({ key, variantKey: target }, clockTags(entry));
      this.l1?.put(target, entry, epoch);
      await this.broadcast({ type: 'set', key: target });
      if (this.version !== undefined) {
        const base = key.slice(this.versioned('').length);
        await this.store.set(`isr-latest:${base}`, { latest: this.version }, ttl);
      }
    }
    debug(
      'store: %s (%d bytes%s%s; %s)%s',
      target,
      entry.body.length,
      entry.br ? `, br ${entry.br.length}` : '',
      entry.gzip ? `, gzip ${entry.gzip.length}` : '',
      this.store instanceof MemoryStore
        ? 'in memory'
        : `~${storedSize(entry)} bytes stored, base64`,
      ok === false ? ' — store unavailable, not kept' : '',
    );
    return ok === false ? 'unavailable' : 'stored';
  }

  /** Tells the other instances; a failed publish is retried once, then reported. */
  private async broadcast(event: CacheEvent): Promise<void> {
    if (this.events === undefined) return;
    for (let attempt = 1; ; attempt += 1) {
      try {
        await this.events.publish(event);
        return;
      } catch (error) {
        if (attempt >= 2) {
          this.reporter.error(error, { phase: 'store-write' });
          return;
        }
      }
    }
  }
}

/** What an entry weighs in a Keyv store: its bodies in base64 plus headers and fields. */
function storedSize(entry: CacheEntry): number {
  const base64 = (n: number) => Math.ceil(n / 3) * 4;
  const bodies =
    base64(entry.body.length) + base64(entry.br?.length ?? 0) + base64(entry.gzip?.length ?? 0);
  return (
    bodies +
    JSON.stringify([entry.headers, entry.tags, entry.url, entry.etag, entry.requestHeaders])
      .length +
    100
  );
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
