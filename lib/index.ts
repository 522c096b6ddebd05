import type { ResponseIsrConfig } from './types';

export type { PurgeState, RevalidationResult } from './invalidation/revalidator';
export type {
  RevalidatePathOptions,
  RevalidateRequest,
  RevalidateTagOptions,
} from './invalidation/targets';
export { type RevalidateRouterOptions, revalidateRouter } from './invalidation/webhook/router';
export { createIsr as isr, type IsrMiddleware } from './isr';
export type { HealthReport, InFlightRender } from './observability/health';
export type { EntriesQuery, EntryInfo } from './observability/inspect';
export type { IsrEventName, IsrEvents, IsrStats } from './observability/observer';
export type { MetricsOptions } from './observability/prometheus';
export type { ErrorContext, IsrOptions } from './options';
export type { PrerenderOptions, PrerenderResult } from './regeneration/prerender';
export type { Lease, Lock } from './render/lease';
export { isRegeneration } from './render/synthetic-request';
export type { CacheControlBuilder, CacheState } from './request/cache-control';
export type { BreakerState } from './stores/guarded';
export { MemoryStore, type MemoryStoreOptions } from './stores/memory';
export type { IsrStore, KeyvLike } from './stores/types';
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
