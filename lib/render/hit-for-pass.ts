import type { IncomingMessage } from 'node:http';
import type { ResolvedOptions } from '../options';
import { variantKeyOf } from '../request/lookup';

/** How long an uncacheable page goes straight to the app at most (`revalidate` if shorter). */
const PASS_WINDOW_MS = 60_000;
/** Uncacheable pages remembered; the oldest are forgotten past this (and tried again). */
const MAX_PASSES = 10_000;

interface Pass {
  until: number;
  reason: string;
  vary: string[];
  variant: string;
}

/**
 * Pages found not cacheable are not rendered apart again for a while (Varnish's
 * hit-for-pass): their visitors go straight to the app, so an uncacheable URL costs its
 * visitors' own renders, plus one shared render per window.
 */
export class HitForPass {
  private readonly passes = new Map<string, Pass>();

  constructor(private readonly options: Pick<ResolvedOptions, 'now' | 'revalidate'>) {}

  /** Why this request for `variantKey` goes straight to the app; `undefined`: it does not. */
  reason(variantKey: string, headers: IncomingMessage['headers']): string | undefined {
    const pass = this.passes.get(variantKey);
    if (pass === undefined) return undefined;
    if (this.options.now() >= pass.until) {
      this.passes.delete(variantKey);
      return undefined;
    }
    return variantKeyOf('', pass.vary, headers) === pass.variant ? pass.reason : undefined;
  }

  /** A render of `variantKey`, made with `headers`, proved not cacheable. */
  remember(
    variantKey: string,
    uncacheable: { reason: string; vary: string[] },
    headers: IncomingMessage['headers'],
  ): void {
    const { reason, vary } = uncacheable;
    // A 429 is the app (or a rate limiter before isr()) refusing the cache's own request for
    // now, not the page saying it may not be cached: it is tried again on the next request.
    if (reason === 'status 429') return;
    const { revalidate, now } = this.options;
    const window =
      revalidate === false ? PASS_WINDOW_MS : Math.min(PASS_WINDOW_MS, revalidate * 1000);
    this.passes.delete(variantKey);
    // Only for the variant that proved it: one `Accept: application/json` must not make the
    // HTML of a `Vary: Accept` page go straight to the app for everyone.
    this.passes.set(variantKey, {
      until: now() + window,
      reason,
      vary,
      variant: variantKeyOf('', vary, headers),
    });
    if (this.passes.size > MAX_PASSES)
      this.passes.delete(this.passes.keys().next().value as string);
  }

  /** An invalidation: a page that was not cacheable may be now. */
  clear(): void {
    this.passes.clear();
  }
}
