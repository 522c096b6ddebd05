/**
 * Time in tests. Windows (revalidate, backoff, TTLs) run on `fakeClock()`, given to
 * `isr({ now })`: time moves only when the test says so. Real time is only for what the test
 * cannot drive by hand (a socket, another process, Redis): `waitFor` polls for a state with a
 * bound, `within` bounds a wait without hanging the test, and `sleep` lets events already
 * under way land.
 */

/** An injectable clock for `isr({ now })`: time moves only when a test says so. */
export function fakeClock(start = Date.UTC(2026, 0, 1)) {
  let time = start;
  return {
    now: () => time,
    advance(ms: number) {
      time += ms;
    },
    advanceSeconds(seconds: number) {
      time += seconds * 1000;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` every `everyMs` until it holds; throws `not within <ms> ms: <what>` after
 * `timeoutMs`, so a state that never comes fails the test with its name.
 */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

/** Resolves with `'timeout'` when `promise` has not settled within `ms`. */
export function within<T>(ms: number, promise: Promise<T>): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
