import { randomUUID } from 'node:crypto';
import { type Lease, type Lock, NO_OP_LEASE } from '../../render/lease';
import { withTimeout } from '../../timeout';
import type { RedisLink } from './client';

/** Runs a Redis call under the store's timeout and circuit breaker (`GuardedStore.attempt`). */
export type Guard = <T>(call: () => Promise<T>) => Promise<{ ok: true; value: T } | { ok: false }>;

/**
 * Deletes the lease only if it is still ours (the rate-limit-redis pattern). The value holds
 * our random token, so an equal value is our lease and no other holder's.
 */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lease only if it is still ours. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/** A render under way somewhere in the fleet, as its lease in Redis tells it. */
export interface LeaseHolder {
  /** The cache key rendered (the page's URL unless the `key` option says otherwise). */
  key: string;
  /** The page's URL, as far as the key tells it (the key without version and variant). */
  url: string;
  /** The `instanceId` of the process rendering it; `unknown` for a lease of an older version. */
  instance: string;
  /** When the holder took the lease (ms, its `now()`); absent for a lease of an older version. */
  since?: number;
}

/** What a lease's value holds: JSON, so that an operator can read who renders what. */
interface LeaseValue {
  token: string;
  instance: string;
  since: number;
  url: string;
}

/** Lease keys read per SCAN step. */
const SCAN_COUNT = 200;

/**
 * Leases in Redis: `SET key value NX PX ttl`, renewed every third of the ttl while the render
 * runs, released by compare-and-delete. A holder that dies stops renewing, and its lease
 * expires after one ttl, so nobody waits on a dead instance for long. Every call goes through
 * the store's guard: while Redis is down, the lock costs nothing and grants every lease.
 * The value says who holds it (`{ token, instance, since, url }`), so `holders()` can list
 * the renders in flight across every instance.
 */
export class RedisLock implements Lock {
  constructor(
    private readonly link: RedisLink,
    private readonly guard: Guard,
    private readonly holder: {
      instance: string;
      now: () => number;
      /** The page URL of a cache key. */
      urlOf: (key: string) => string;
    } = { instance: 'unknown', now: Date.now, urlOf: (key) => key },
  ) {}

  async acquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const leaseKey = this.keyOf(key);
    // JSON, so that a Keyv iterator walking every key of a namespace-less Redis
    // (`cache.entries()`) can parse it and skip it instead of stopping there.
    const lease: LeaseValue = {
      token: randomUUID(),
      instance: this.holder.instance,
      since: this.holder.now(),
      url: this.holder.urlOf(key),
    };
    const value = JSON.stringify(lease);
    const ttl = Math.max(1, Math.round(ttlMs));
    const granted = await this.guard(async () => {
      const client = await this.link.client();
      return client.set(leaseKey, value, { NX: true, PX: ttl });
    });
    // Fail open when Redis does not answer: render, even if another instance might too.
    if (!granted.ok) return NO_OP_LEASE;
    if (granted.value !== 'OK') return undefined;

    const renew = setInterval(() => {
      void this.guard(async () => {
        const client = await this.link.client();
        return client.eval(RENEW, { keys: [leaseKey], arguments: [value, String(ttl)] });
      });
    }, ttl / 3);
    renew.unref();
    return {
      release: async () => {
        clearInterval(renew);
        // If this fails, the lease expires by itself within one ttl.
        await this.guard(async () => {
          const client = await this.link.client();
          return client.eval(RELEASE, { keys: [leaseKey], arguments: [value] });
        });
      },
    };
  }

  async held(key: string): Promise<boolean> {
    const exists = await this.guard(async () => {
      const client = await this.link.client();
      return client.exists(this.keyOf(key));
    });
    return exists.ok && exists.value === 1;
  }

  /**
   * The leases held right now, by every instance sharing this Redis: `SCAN` over the lease
   * prefix (never `KEYS`), at most `limit` of them, each call bounded by `timeoutMs` and the
   * whole by `budgetMs`. Outside the guard: an operator's question neither waits for nor moves
   * the circuit breaker. Rejects when Redis does not answer; `truncated` when there may be more.
   */
  async holders(
    limit: number,
    timeoutMs: number,
    budgetMs: number,
  ): Promise<{ holders: LeaseHolder[]; truncated: boolean }> {
    const deadline = Date.now() + budgetMs;
    const bounded = <T>(call: Promise<T>) =>
      withTimeout(
        call,
        Math.max(1, Math.min(timeoutMs, deadline - Date.now())),
        'lease listing timed out',
      );
    const client = await bounded(this.link.client());
    if (typeof client.scan !== 'function' || this.link.cluster) {
      // A cluster client has no SCAN of its own (each master has its keys): not listed.
      throw new Error('listing leases needs a standalone Redis (SCAN)');
    }
    const prefix = this.keyOf('');
    const match = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    const keys = new Set<string>();
    let cursor = '0';
    let truncated = false;
    do {
      if (Date.now() >= deadline) {
        truncated = true;
        break;
      }
      const step = await bounded(client.scan(cursor, { MATCH: match, COUNT: SCAN_COUNT }));
      cursor = String(step.cursor);
      for (const key of step.keys) keys.add(String(key));
      if (keys.size > limit) {
        truncated = true;
        break;
      }
    } while (cursor !== '0');
    const found = [...keys].slice(0, limit);
    if (found.length === 0) return { holders: [], truncated };
    const values = await bounded(client.mGet(found));
    const holders: LeaseHolder[] = [];
    found.forEach((leaseKey, i) => {
      const raw = values[i];
      // Released (or expired) between the SCAN and the MGET: no longer in flight.
      if (raw === null || raw === undefined) return;
      holders.push(describeLease(leaseKey.slice(prefix.length), raw));
    });
    holders.sort((a, b) => (a.since ?? 0) - (b.since ?? 0));
    return { holders, truncated };
  }

  private keyOf(key: string): string {
    return `${this.link.prefix}isr-lease:${key}`;
  }
}

/** A lease value as an operator reads it; a lease of an older version held a bare token. */
function describeLease(key: string, raw: string): LeaseHolder {
  try {
    const value = JSON.parse(raw) as Partial<LeaseValue>;
    if (typeof value === 'object' && value !== null && typeof value.instance === 'string') {
      return {
        key,
        url: typeof value.url === 'string' ? value.url : key,
        instance: value.instance,
        since: typeof value.since === 'number' ? value.since : undefined,
      };
    }
  } catch {
    // not JSON: an older lease, listed by its key alone
  }
  return { key, url: key, instance: 'unknown' };
}
