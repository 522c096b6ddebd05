/**
 * Clean-ups that run after each test, newest first, even when the test failed: servers,
 * caches and temp folders a test registers with `cleanups.push(() => …)` never outlive it
 * (a leaked handle would keep Jest from exiting).
 */
export function cleanupsAfterEach(): (() => unknown)[] {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return cleanups;
}
