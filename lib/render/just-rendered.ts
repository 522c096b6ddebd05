import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { replay } from '../request/replay';
import type { CacheEntry } from '../types';
import { variantMatches } from './variant-match';

/**
 * Pages whose render has finished while their store is still under way (compression):
 * requests for them are answered from the finished page, as hits. With the memory store at
 * once, as every invalidation clears them (`clear`); with a shared store another instance may
 * invalidate one meanwhile, which only the shared clocks tell (`answerStored`).
 */
export class JustRendered {
  private readonly pages = new Map<string, CacheEntry>();

  constructor(private readonly engine: Engine) {}

  has(variantKey: string): boolean {
    return this.pages.has(variantKey);
  }

  set(variantKey: string, entry: CacheEntry): void {
    this.pages.set(variantKey, entry);
  }

  delete(variantKey: string): void {
    this.pages.delete(variantKey);
  }

  /** An invalidation: pages rendered just now and still being stored are not answered any more. */
  clear(): void {
    this.pages.clear();
  }

  /** With the memory store: answers the request from the page rendered just now, if it may. */
  answer(req: IncomingMessage, res: ServerResponse, variantKey: string): boolean {
    const done = this.matching(req, variantKey, true);
    if (done !== undefined) this.replay(req, res, done, variantKey);
    return done !== undefined;
  }

  /**
   * `answer` for a shared store: the page is answered only while it is fresh by the shared tag
   * clocks, so that an `expire` accepted on any instance holds for the next request here too
   * (README, "Running many instances").
   */
  async answerStored(req: IncomingMessage, res: ServerResponse, key: string): Promise<boolean> {
    const done = this.matching(req, key, false);
    if (done === undefined) return false;
    if ((await this.engine.freshness(done)).state !== 'fresh') {
      if (this.pages.get(key) === done) this.pages.delete(key);
      return false;
    }
    this.replay(req, res, done, key);
    return true;
  }

  /** The page rendered just now that may answer `req`, with the memory store or not (`local`). */
  private matching(req: IncomingMessage, key: string, local: boolean): CacheEntry | undefined {
    if (this.engine.isLocalStore !== local) return undefined;
    const done = this.pages.get(key);
    return done !== undefined && variantMatches(done, req.headers) ? done : undefined;
  }

  private replay(req: IncomingMessage, res: ServerResponse, done: CacheEntry, key: string): void {
    debug('hit: %s (rendered just now, being stored)', key);
    this.engine.observer.hit(key, 0);
    replay(req, res, done, 'HIT', this.engine.options.now(), this.engine.options);
  }
}
