/**
 * Everything a scenario opens (server children, Redis namespaces) registers how to undo it,
 * so that a failing scenario still closes children and deletes benchmark keys. On Ctrl-C the
 * runner asks for a stop: loops stop between two calls and unwind through their `finally`,
 * so nothing is written to a store after it was cleaned up.
 */
type Cleanup = () => Promise<void> | void;

const cleanups = new Set<Cleanup>();
let stopRequested = false;

/** Registers `fn`; returns a function that unregisters it (call it once you undid it yourself). */
export function onCleanup(fn: Cleanup): () => void {
  cleanups.add(fn);
  return () => {
    cleanups.delete(fn);
  };
}

/** Runs every registered cleanup, newest first; a failing one is reported, not thrown. */
export async function cleanupAll(): Promise<void> {
  for (const fn of [...cleanups].reverse()) {
    cleanups.delete(fn);
    try {
      await fn();
    } catch (error) {
      console.error('[bench] cleanup failed:', error);
    }
  }
}

export function requestStop(): void {
  stopRequested = true;
}

export function stopped(): boolean {
  return stopRequested;
}

/** Called by measuring loops between two steps. */
export function throwIfStopped(): void {
  if (stopRequested) throw new Error('interrupted');
}
