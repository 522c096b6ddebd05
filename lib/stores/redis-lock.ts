import { randomUUID } from 'node:crypto';
import { type Lease, type Lock, NO_OP_LEASE } from '../lease';
import { withTimeout } from '../timeout';
import type { RedisLink } from './redis';

/** Deletes the lease only if it is still ours (the rate-limit-redis pattern). */
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
/** Extends the lease only if it is still ours. */
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;

/**
 * Leases in Redis: `SET key token NX PX ttl`, renewed every third of the ttl while the render
 * runs, released by compare-and-delete. A holder that dies stops renewing, and its lease
 * expires after one ttl, so nobody waits on a dead instance for long.
 */
export class RedisLock implements Lock {
  constructor(
    private readonly link: RedisLink,
    private readonly timeout: number,
    private readonly onFailure: (error: unknown) => void,
  ) {}

  async acquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const leaseKey = this.keyOf(key);
    const token = randomUUID();
    const ttl = Math.max(1, Math.round(ttlMs));
    let granted: unknown;
    try {
      const client = await withTimeout(
        this.link.client(),
        this.timeout,
        'lease: no Redis connection',
      );
      granted = await withTimeout(
        client.set(leaseKey, token, { NX: true, PX: ttl }),
        this.timeout,
        'lease: SET timed out',
      );
    } catch (error) {
      this.onFailure(error);
      return NO_OP_LEASE; // fail open: render, even if another instance might too
    }
    if (granted !== 'OK') return undefined;

    const renew = setInterval(() => {
      this.link
        .client()
        .then((client) => client.eval(RENEW, { keys: [leaseKey], arguments: [token, String(ttl)] }))
        .catch(this.onFailure);
    }, ttl / 3);
    renew.unref();
    return {
      release: async () => {
        clearInterval(renew);
        try {
          const client = await this.link.client();
          await withTimeout(
            client.eval(RELEASE, { keys: [leaseKey], arguments: [token] }),
            this.timeout,
            'lease: release timed out',
          );
        } catch (error) {
          this.onFailure(error); // it expires by itself
        }
      },
    };
  }

  async held(key: string): Promise<boolean> {
    try {
      const client = await withTimeout(
        this.link.client(),
        this.timeout,
        'lease: no Redis connection',
      );
      return (
        (await withTimeout(
          client.exists(this.keyOf(key)),
          this.timeout,
          'lease: EXISTS timed out',
        )) === 1
      );
    } catch (error) {
      this.onFailure(error);
      return false;
    }
  }

  private keyOf(key: string): string {
    return `${this.link.prefix}isr-lease:${key}`;
  }
}
