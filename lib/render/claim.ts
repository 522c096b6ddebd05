import { type Engine, LEASE_TTL_MS } from '../engine';

/** What one claim on a page does at each turn; each caller brings its own policy. */
export interface ClaimSteps<T> {
  /**
   * Another instance holds the page's lease: what to do instead (wait for its page, leave it
   * the work, report the page as skipped).
   */
  taken(): Promise<T>;
  /**
   * Under the lease, before rendering: the answer when another instance stored the page
   * between the caller's lookup and the lease (`undefined`: nobody did, render it).
   */
  storedMeanwhile(): Promise<T | undefined>;
  /**
   * Renders and saves the page under the lease. A save still going on in the background when
   * it resolves is handed to `hold`: the lease is kept until it settles.
   */
  render(hold: (saving: Promise<unknown>) => void): Promise<T>;
  /**
   * Given the lease's release when the claim does not wait for it (for `idle()` to wait for);
   * without it, the claim resolves only once the lease is released.
   */
  releasing?(released: Promise<void>): void;
}

/**
 * One render of a page across every instance sharing a store: take the page's lease, look
 * again in the store (another instance may have rendered it between the caller's lookup and
 * the lease), render, save, give the lease back. Cold pages, regenerations and `prerender()`
 * all go this way; what differs between them is in `steps`.
 */
export async function claim<T>(
  engine: Engine,
  variantKey: string,
  steps: ClaimSteps<T>,
): Promise<T> {
  const lease = await engine.lock.acquire(variantKey, LEASE_TTL_MS);
  if (lease === undefined) return steps.taken();
  let saving: Promise<unknown> | undefined;
  try {
    return (await steps.storedMeanwhile()) ?? (await steps.render((work) => (saving = work)));
  } finally {
    const released =
      saving === undefined
        ? lease.release()
        : saving.then(
            () => lease.release(),
            () => lease.release(),
          );
    if (steps.releasing === undefined) await released;
    else steps.releasing(released);
  }
}
