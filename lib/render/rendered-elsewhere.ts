import type { IncomingMessage } from 'node:http';
import type { Engine } from '../engine';
import { isInProcess } from '../observability/in-flight';
import type { CacheEntry } from '../types';
import { variantMatches } from './variant-match';

/**
 * A fresh entry for this request that another instance stored, if the lock is shared at all:
 * looked for under the lease, between the lookup that found none and the render.
 */
export async function storedElsewhere(
  engine: Engine,
  key: string,
  headers: IncomingMessage['headers'],
): Promise<CacheEntry | undefined> {
  if (isInProcess(engine.lock)) return undefined; // one process: nobody else stores
  const found = await engine.lookup(key, headers);
  if (found.entry === undefined || !variantMatches(found.entry, headers)) return undefined;
  const state = await engine.freshness(found.entry, found);
  return state.state === 'fresh' ? found.entry : undefined;
}

/**
 * Polls the store for the entry another instance is rendering, while it holds the lease (at
 * most `regenerateTimeout`); `undefined` when none came.
 */
export async function awaitOtherInstance(
  engine: Engine,
  key: string,
  variantKey: string,
  headers: IncomingMessage['headers'],
): Promise<CacheEntry | undefined> {
  const deadline = Date.now() + engine.options.regenerateTimeout;
  for (let delay = 10; Date.now() < deadline; delay = Math.min(delay * 2, 200)) {
    await new Promise((resolve) => setTimeout(resolve, delay).unref());
    const holderAlive = await engine.lock.held(variantKey);
    const found = await engine.lookup(key, headers);
    if (found.entry !== undefined && variantMatches(found.entry, headers)) {
      const state = await engine.freshness(found.entry, found);
      if (state.state !== 'expired') return found.entry;
    }
    if (!holderAlive) return undefined; // finished without a shareable page, or died
  }
  return undefined;
}
