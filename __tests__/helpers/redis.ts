import { randomBytes } from 'node:crypto';

/** Where the shared-store tests find Redis: `REDIS_URL`, else the local default. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * A namespace no other test (or other user of this Redis) shares. Tests clean up their own
 * namespace with `keyv.clear()`, which only touches keys under it; never FLUSHALL.
 */
export function uniqueNamespace(label: string): string {
  return `express-isr-test:${label}:${randomBytes(4).toString('hex')}`;
}
