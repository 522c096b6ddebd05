import { throwIfStopped } from './cleanup';

/**
 * Fills a store quickly: `put(i)` for i in [0, count), `batch` at a time (each batch awaited
 * together, so a remote store gets them pipelined). Returns the elapsed ms.
 */
export async function fill(
  count: number,
  batch: number,
  put: (i: number) => unknown,
): Promise<number> {
  const start = performance.now();
  for (let from = 0; from < count; from += batch) {
    throwIfStopped();
    const pending: unknown[] = [];
    for (let i = from; i < Math.min(count, from + batch); i += 1) pending.push(put(i));
    await Promise.all(pending);
  }
  return performance.now() - start;
}
