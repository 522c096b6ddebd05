import type { IndexedPage, PageIndex } from '../../invalidation/tag-index';
import { debug } from '../../observability/report';
import type { RedisLink } from './client';
import type { Guard } from './lock';

/**
 * Pages kept per tag. Past it, the pages that expire soonest are dropped from that tag's set:
 * they are not re-rendered ahead of their next visitor by a `regenerate` of that tag, and
 * `cache.entries()` does not list them (the clocks still make them stale). A member is the
 * page's key or keys as JSON, about 100 bytes for a typical URL: 10,000 cost about 1 MB (40 MB at
 * most: a URL over 2 KB is never cached, see request/eligibility.ts, and a member holds two
 * keys at most).
 */
const MAX_PAGES_PER_TAG = 10_000;
/**
 * Query variants (`/x?r=1`) kept per tag, in a set of their own: any client can make as many
 * as it likes, so they must not push the pages without a query out of a tag's set.
 */
const MAX_QUERY_VARIANTS_PER_TAG = 1_000;

/** Which of a tag's two sets: the pages without a query, or the query variants. */
export type IndexedKind = 'pages' | 'variants';

/** How much longer a tag's set lives than the pages in it: their write may come late. */
const KEY_MARGIN_MS = 60_000;

/**
 * Records a page (`ARGV[3]`) that lives until `ARGV[2]`: drops the members expired at
 * `ARGV[1]`, keeps at most `ARGV[5]` (those expiring last), and makes the set live at least
 * `ARGV[4]` ms, as long as the longest-lived page in it.
 */
const ADD = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[5])
if over > 0 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1) end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
return 1`;

/** The members still alive at `ARGV[1]`, from the `ARGV[2]`-th, at most `ARGV[3]`. */
const LIST = `return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', ARGV[2], ARGV[3])`;

/**
 * The index of which pages carry which tags, shared by every instance on one Redis, so that
 * `mode: 'regenerate'` on any of them re-renders every matching page — not only the ones the
 * instance that got the webhook has seen. One sorted set per tag (`isr-page-index:<tag>`, with
 * the deploy's version in front when there is one, in the store's namespace), its members the
 * pages, scored by when each expires from the store: expired members are dropped on the next
 * write and never read. Each set lives as long as the longest-lived page in it, plus a minute.
 * A tag's query variants have a smaller set of their own (`isr-query-index:<tag>`): a flood
 * of `/x?r=N` from any client then only pushes other variants out, never a page.
 *
 * Written only when a page is stored (never on a hit), one script call per tag, pipelined;
 * each touches one key, so this works on a Redis Cluster too. Every call goes through the
 * store's guard (timeout, circuit breaker) and fails open: a write that does not happen, a
 * set Redis evicted or a read that fails only mean that some pages are not re-rendered ahead
 * of their next visitor — the tag clocks still make them stale, and a page is only ever
 * re-rendered from the app, never brought back from the index: no eviction resurrects a page.
 */
export class RedisPageIndex implements PageIndex {
  constructor(
    private readonly link: RedisLink,
    private readonly guard: Guard,
    private readonly now: () => number,
    /** The deploy's version: each version indexes (and re-renders) its own pages. */
    private readonly version: string | undefined,
    /** Pages kept per tag (`MAX_PAGES_PER_TAG`; smaller in tests). */
    private readonly limit = MAX_PAGES_PER_TAG,
    /** Query variants kept per tag (`MAX_QUERY_VARIANTS_PER_TAG`; smaller in tests). */
    private readonly variantLimit = MAX_QUERY_VARIANTS_PER_TAG,
  ) {}

  async add(page: IndexedPage, tags: readonly string[], lifeMs?: number): Promise<void> {
    if (lifeMs === undefined) return;
    const at = this.now();
    const member = JSON.stringify(
      page.key === page.variantKey ? [page.key] : [page.key, page.variantKey],
    );
    const kind: IndexedKind = page.key.includes('?') ? 'variants' : 'pages';
    const args = [
      String(at),
      String(at + lifeMs),
      member,
      String(Math.ceil(lifeMs + KEY_MARGIN_MS)),
      String(kind === 'pages' ? this.limit : this.variantLimit),
    ];
    const result = await this.guard(async () => {
      const client = await this.link.client();
      return Promise.all(
        tags.map((tag) => client.eval(ADD, { keys: [this.keyOf(tag, kind)], arguments: args })),
      );
    });
    if (!result.ok) debug('index: %s not indexed (store unavailable)', page.variantKey);
  }

  async pagesWith(tags: readonly string[]): Promise<IndexedPage[] | undefined> {
    const found = new Map<string, IndexedPage>();
    const lists = await Promise.all(
      tags.flatMap((tag) => [
        this.list(tag, 0, this.limit, 'pages'),
        this.list(tag, 0, this.variantLimit, 'variants'),
      ]),
    );
    if (lists.every((list) => list === undefined)) return undefined;
    for (const list of lists) for (const page of list ?? []) found.set(page.variantKey, page);
    return [...found.values()];
  }

  /**
   * The pages (or the query variants) of `tag` still alive, in the order they expire, `count`
   * of them from the `from`-th; `undefined` when the index could not be read.
   */
  async list(
    tag: string,
    from: number,
    count: number,
    kind: IndexedKind = 'pages',
  ): Promise<IndexedPage[] | undefined> {
    const result = await this.guard(async () => {
      const client = await this.link.client();
      return client.eval(LIST, {
        keys: [this.keyOf(tag, kind)],
        arguments: [String(this.now()), String(from), String(count)],
      });
    });
    if (!result.ok || !Array.isArray(result.value)) return undefined;
    const pages: IndexedPage[] = [];
    for (const member of result.value) {
      const page = pageOf(member);
      if (page !== undefined) pages.push(page);
    }
    return pages;
  }

  private keyOf(tag: string, kind: IndexedKind): string {
    const version = this.version === undefined ? '' : `v:${this.version}:`;
    const name = kind === 'pages' ? 'isr-page-index' : 'isr-query-index';
    return this.link.storeKey(`${name}:${version}${tag}`);
  }
}

/** A member as `add` wrote it, or `undefined` for anything else. */
function pageOf(member: unknown): IndexedPage | undefined {
  if (typeof member !== 'string') return undefined;
  try {
    const keys = JSON.parse(member) as unknown;
    if (!Array.isArray(keys) || typeof keys[0] !== 'string') return undefined;
    const variantKey = typeof keys[1] === 'string' ? keys[1] : keys[0];
    return { key: keys[0], variantKey };
  } catch {
    return undefined;
  }
}
