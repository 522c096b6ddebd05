/**
 * Leases decide which instance renders a page when several share a store, so that a cold or
 * stale page is rendered once in total, not once per instance. In one process the single
 * flight maps already do that, so the in-process lock grants every lease. Pass your own as
 * the `lock` option (e.g. for a store other than Redis); with `@keyv/redis` one is built in.
 */
export interface Lease {
  /** Gives the lease back (only if it is still ours). Never rejects. */
  release(): Promise<void>;
}

export interface Lock {
  /**
   * Takes the lease on `key` for `ttlMs`, renewed while held; `undefined` when another
   * holder has it. When the lease service itself fails, a lease is granted (fail open: a
   * duplicate render is better than none).
   */
  acquire(key: string, ttlMs: number): Promise<Lease | undefined>;
  /** Whether somebody holds the lease on `key` (false when unknown). */
  held(key: string): Promise<boolean>;
}

const NO_OP_LEASE: Lease = { release: async () => {} };

export const inProcessLock: Lock = {
  acquire: async () => NO_OP_LEASE,
  held: async () => false,
};

export { NO_OP_LEASE };
