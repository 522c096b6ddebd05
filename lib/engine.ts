import type { IncomingMessage } from 'node:http';
import type { TagClocks } from './invalidation/tag-clocks';
import { TagIndex } from './invalidation/tag-index';
import { Observer } from './observability/observer';
import { prometheusSink } from './observability/prometheus';
import { Redactor } from './observability/redact';
import { debug, Reporter } from './observability/report';
import { type WarningCode, warnOnce } from './observability/warnings';
import type { ResolvedOptions } from './options';
import type { Lock } from './render/lease';
import { canonicalUrl, type QueryFilter, queryFilter } from './request/cache-key';
import type { L1 } from './stores/l1';
import { MemoryStore } from './stores/memory';
import { PageWrites } from './stores/page-writes';
import type { RedisEvents } from './stores/redis/events';
import type { RedisPageIndex } from './stores/redis/page-index';
import { openTiers, type StoreProbe, type Walk } from './stores/tiers';
import type { EntryStore } from './stores/types';
import type { RequestHandler } from './types';

/** How long a render lease lasts between renewals: a dead holder blocks others this long at most. */
export const LEASE_TTL_MS = 5000;

/**
 * State shared by the request flow, regeneration and revalidation: the options, the store
 * (guarded when remote), the tag clocks, the lock and — with Redis — the in-process copy (L1)
 * and the events that keep it coherent. How a page is found and judged is `PageLookups`
 * (request/lookup.ts), how one is stored `PageWrites` (stores/page-writes.ts); here are the
 * render clock, invalidations, cache keys and the warnings.
 */
export class Engine extends PageWrites {
  readonly reporter: Reporter;
  readonly store: EntryStore;
  /** Walks the stored values, for inspection. */
  readonly walk: Walk;
  readonly clocks: TagClocks;
  readonly lock: Lock;
  /** What `cache.health()` reads of the store, its breaker and the leases. */
  readonly probe: StoreProbe;
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
  /** With Redis: the index every instance writes, so `regenerate` reaches every page. */
  readonly sharedIndex: RedisPageIndex | undefined;
  protected readonly l1: L1 | undefined;
  protected readonly events: RedisEvents | undefined;
  /** A store `isr()` created itself (from a URL), closed by `close()`. */
  private readonly owned: { close(): Promise<void> } | undefined;
  private readonly canonicalMemo = new Map<string, { path: string; url: string }>();
  /** The latest invalidation and the latest render start this process recorded (ms). */
  private lastBump = 0;
  private lastRenderStart = 0;

  constructor(readonly options: ResolvedOptions) {
    super();
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
    this.probe = tiers.probe;
    this.l1 = tiers.l1;
    this.events = tiers.events;
    this.sharedIndex = tiers.pageIndex;
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
  warn(code: WarningCode, message: string): void {
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
}
