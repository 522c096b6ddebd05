import type { ResponseIsrConfig } from './types';

export type { EntriesQuery, EntryInfo } from './inspect';
export type { Lease, Lock } from './lease';
export { createIsr as isr, type IsrMiddleware } from './middleware';
export type { IsrEventName, IsrEvents, IsrStats } from './observe';
export type { ErrorContext, IsrOptions } from './options';
export type { PrerenderOptions, PrerenderResult } from './prerender';
export type { MetricsOptions } from './prometheus';
export type { CacheControlBuilder, CacheState } from './replay';
export type { RevalidatePathOptions, RevalidateTagOptions } from './revalidate';
export { type RevalidateRouterOptions, revalidateRouter } from './router';
export type { KeyvLike } from './stores/keyv-store';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory-store';
export { isRegeneration } from './synthetic-request';
export type { CacheEntry, ResponseIsrConfig, RevalidateMode } from './types';

declare global {
  // Module augmentation: `res.isr()` is typed on Express's Response (Express 4 and 5 types).
  namespace Express {
    interface Response {
      /**
       * Configures how this response is cached by `isr()`: `revalidate` in seconds (`false` =
       * only on demand, `0` = do not cache), `tags` for `revalidateTag`. Call it any number of
       * times; tags accumulate, the last revalidate wins.
       */
      isr(config: ResponseIsrConfig): void;
    }
  }
}
