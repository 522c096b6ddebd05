import type { ClockKind, TagClocks, TagTimes } from '../../invalidation/tag-clocks';
import type { RedisLink } from './client';
import type { Guard } from './lock';

/**
 * Raises a clock, never lowers it, and keeps it at least as long as it already had to live
 * (the pages holding it) or `ARGV[2]` ms (renders in flight that started before it).
 */
const BUMP = `
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current ~= nil and current >= tonumber(ARGV[1]) then return 0 end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < tonumber(ARGV[2]) then ttl = tonumber(ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
return 1`;

/**
 * Creates the clock as a marker (`-at`: "kept since at, never bumped") unless it exists, and
 * makes it live at least `ARGV[2]` ms: as long as the page about to be written.
 */
const HOLD = `
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl >= 0 and ttl < tonumber(ARGV[2]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
return redis.call('GET', KEYS[1])`;

/**
 * The clock every invalidation also raises, whatever its tags: what a save checks when one of
 * its page's clocks was made during the render (see `hold`). `*` is no tag's name (theirs are
 * `tag:…`, `page:…`, `layout:…`).
 */
const ANY = '*';

/**
 * Tag clocks in Redis that survive eviction without ever passing an expired page for fresh.
 *
 * A Redis with `maxmemory` and an `allkeys-*` policy may evict a clock and keep the page it
 * invalidated; read as "never revalidated", the page would come back fresh (and, after an
 * `expire`, be served again). So, before a page is written, every clock it depends on is made
 * to exist (`HOLD`): if it was never bumped, as a marker `-t` saying since when it is kept,
 * with a TTL at least the page's. From then on, for as long as the page lives:
 *
 * - a clock that is missing was evicted (it would outlive the page otherwise);
 * - a marker newer than the page's `storedAt` was made again after the one the page saw was
 *   evicted — and with it, maybe, an invalidation;
 *
 * and in both cases the page cannot be trusted: `lost` says so, and freshness re-renders it
 * (an expired one before anyone sees it). A bump raises the clock (never lowers it: two
 * instances may race) and keeps its TTL, which already covers every page holding it; a clock
 * no page holds lives just long enough for renders that started before it to be stored.
 *
 * Each key is one command: no script touches two keys, so this works on Redis Cluster too.
 */
export class RedisTagClocks implements TagClocks {
  constructor(
    private readonly link: RedisLink,
    private readonly guard: Guard,
    /** How long a clock that no page holds yet lives: the longest a render can take. */
    private readonly inFlightMs: number,
  ) {}

  async read(tags: readonly string[], storedAt?: number): Promise<TagTimes> {
    const keys: string[] = [];
    for (const tag of tags) keys.push(this.keyOf('stale', tag), this.keyOf('expire', tag));
    const values = await this.guard(async () => {
      const client = await this.link.client();
      // One MGET where it can: the hit path of a page read from Redis pays one round trip and
      // one command. On a cluster the clocks live on several shards: a GET each, pipelined.
      if (!this.link.cluster) return client.mGet(keys);
      return Promise.all(keys.map((key) => client.get(key)));
    });
    // Clocks that cannot be read might hide an invalidation, an `expire` too: as for a lost
    // clock, the page is rendered again rather than served.
    if (!values.ok) return { stale: 0, expire: 0, lost: 'expire' };
    const times: TagTimes = { stale: 0, expire: 0 };
    for (let i = 0; i < values.value.length; i += 1) {
      const kind: ClockKind = i % 2 === 0 ? 'stale' : 'expire';
      const raw = values.value[i];
      const value = raw === null ? Number.NaN : Number(raw);
      if (value > 0) {
        times[kind] = Math.max(times[kind], value);
      } else if (storedAt !== undefined && !(value <= 0 && -value <= storedAt)) {
        // Gone, or made again since the page was stored (or not a number we wrote): evicted.
        if (times.lost !== 'expire') times.lost = kind;
      }
    }
    return times;
  }

  async bump(tags: readonly string[], kind: ClockKind, at: number): Promise<void> {
    const result = await this.guard(async () => {
      const client = await this.link.client();
      return Promise.all(
        [...tags, ANY].map((tag) =>
          client.eval(BUMP, {
            keys: [this.keyOf(kind, tag)],
            arguments: [String(at), String(this.inFlightMs)],
          }),
        ),
      );
    });
    if (!result.ok) throw new Error('the store is unavailable: the revalidation was not recorded');
  }

  /**
   * Holds the clocks of a page rendered from `renderedAt`, about to be stored at `at`. A clock
   * that had to be made during the render (it did not exist, or was made again since) may be
   * one an invalidation wrote meanwhile and Redis evicted — a page rendered before a takedown
   * would then pass for fresh. The `*` clock, which every invalidation raises and every page
   * holds, tells: if any invalidation came during the render, the page is `unsure` and not
   * stored (the next request renders it again). A `*` made by this very save (a new namespace,
   * or one evicted while no invalidation came) says nothing came: it would have been raised.
   * Only an eviction of `*` between an invalidation during the render and this save — the key
   * just written, the last an LRU picks — goes unseen.
   */
  async hold(
    tags: readonly string[],
    at: number,
    lifeMs: number,
    renderedAt: number,
  ): Promise<'held' | 'failed' | 'unsure'> {
    const ttl = String(Math.max(1, Math.ceil(lifeMs)));
    const result = await this.guard(async () => {
      const client = await this.link.client();
      const calls: Promise<unknown>[] = [];
      for (const tag of [...tags, ANY]) {
        for (const kind of ['stale', 'expire'] as const) {
          calls.push(
            client.eval(HOLD, { keys: [this.keyOf(kind, tag)], arguments: [String(-at), ttl] }),
          );
        }
      }
      return Promise.all(calls);
    });
    if (!result.ok) return 'failed';
    const values = result.value.map((raw) => Number(raw));
    const madeSince = (value: number) => !(value > 0) && !(-value <= renderedAt);
    const any = values.slice(-2);
    if (values.slice(0, -2).some(madeSince) && any.some((value) => value >= renderedAt))
      return 'unsure';
    return 'held';
  }

  private keyOf(kind: ClockKind, tag: string): string {
    return this.link.storeKey(`isr-tag-clock:${kind}:${tag}`);
  }
}
