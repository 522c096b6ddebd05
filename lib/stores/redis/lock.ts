import { randomUUID } from 'node:crypto';
import { type Lease, type Lock, NO_OP_LEASE } from '../../render/lease';
import type { RedisLink } from './client';

/** Runs a Redis call under the store's timeout and circuit breaker (`GuardedStore.attempt`). */
export type Guard = <T>(call: () => Promise<T>) => Promise<{ ok: true; value: T } | { ok: false }>;

/** Deletes the lease only if it is still ours (the rate-limit-redis pattern). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lease only if it is still ours. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/**
 * Leases in Redis: `SET key token NX PX ttl`, renewed every third of the ttl while the render
 * runs, released by compare-and-delete. A holder that dies stops renewing, and its lease
 * expires after one ttl, so nobody waits on a dead instance for long. Every call goes through
 * the store's guard: while Redis is down, the lock costs nothing and grants every lease.
 */
export class RedisLock implements Lock {
  constructor(
    private readonly link: RedisLink,
    private readonly guard: Guard,
  ) {}

  async acquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const leaseKey = this.keyOf(key);
    // A JSON string, so that a Keyv iterator walking every key of a namespace-less Redis
    // (`cache.entries()`) can parse it and skip it instead of stopping there.
    const token = JSON.stringify(randomUUID());
    const ttl = Math.max(1, Math.round(ttlMs));
    const granted = await this.guard(async () => {
      const client = await this.link.client();
      return client.set(leaseKey, token, { NX: true, PX: ttl });
    });
    // Fail open when Redis does not answer: render, even if another instance might too.
    if (!granted.ok) return NO_OP_LEASE;
    if (granted.value !== 'OK') return undefined;

    const renew = setInterval(() => {
      void this.guard(async () => {
        const client = await this.link.client();
        return client.eval(RENEW, { keys: [leaseKey], arguments: [token, String(ttl)] });
      });
    }, ttl / 3);
    renew.unref();
    return {
      release: async () => {
        clearInterval(renew);
        // If this fails, the lease expires by itself within one ttl.
        await this.guard(async () => {
          const client = await this.link.client();
          return client.eval(RELEASE, { keys: [leaseKey], arguments: [token] });
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

  private keyOf(key: string): string {
    return `${this.link.prefix}isr-lease:${key}`;
  }
}
