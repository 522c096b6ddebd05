import { inProcessLock, type Lease, type Lock } from '../render/lease';
import type { LeaseHolder } from '../stores/redis/lock';

/** Where the renders in flight are read: every instance's leases in Redis, or this process's. */
export interface InFlightSource {
  scope: 'fleet' | 'process';
  list(
    limit: number,
    timeoutMs: number,
    budgetMs: number,
  ): Promise<{ holders: LeaseHolder[]; truncated: boolean }>;
}

/**
 * A lock that remembers the leases it granted in this process until they are released: what
 * `cache.health()` lists as in flight when the leases are not in Redis (the memory store, a
 * Keyv store other than Redis, a `lock` of your own). Costs a Map entry per render.
 */
export class InFlightLock implements Lock, InFlightSource {
  readonly scope = 'process';
  private readonly granted = new Map<object, LeaseHolder>();

  constructor(
    readonly inner: Lock,
    private readonly holder: {
      instance: string;
      now: () => number;
      urlOf: (key: string) => string;
      /** A lease not released after this long is forgotten (a holder that never released). */
      forgetAfterMs: number;
    },
  ) {}

  async acquire(key: string, ttlMs: number): Promise<Lease | undefined> {
    const lease = await this.inner.acquire(key, ttlMs);
    if (lease === undefined) return undefined;
    const mark = {};
    this.granted.set(mark, {
      key,
      url: this.holder.urlOf(key),
      instance: this.holder.instance,
      since: this.holder.now(),
    });
    return {
      release: () => {
        this.granted.delete(mark);
        return lease.release();
      },
    };
  }

  held(key: string): Promise<boolean> {
    return this.inner.held(key);
  }

  async list(limit: number): Promise<{ holders: LeaseHolder[]; truncated: boolean }> {
    const oldest = this.holder.now() - this.holder.forgetAfterMs;
    const holders: LeaseHolder[] = [];
    for (const [mark, holder] of this.granted) {
      if ((holder.since ?? 0) < oldest) this.granted.delete(mark);
      else holders.push(holder);
    }
    return { holders: holders.slice(0, limit), truncated: holders.length > limit };
  }
}

/** Whether `lock` grants every lease in this process alone (no other instance to wait for). */
export function isInProcess(lock: Lock): boolean {
  return (lock instanceof InFlightLock ? lock.inner : lock) === inProcessLock;
}
