import type { ServerResponse } from 'node:http';

export type IsrState = 'HIT' | 'STALE' | 'MISS' | 'BYPASS';

export interface StateDetail {
  /** Seconds of freshness left (HIT). */
  ttl?: number;
  /** MISS: the response will be stored. */
  stored?: boolean;
  /** MISS: shared from a render another request started (RFC 9211 `collapsed`). */
  collapsed?: boolean;
  /**
   * MISS: the status of an error page passed on, not stored; STALE: of the failed render the
   * stale page stands in for (RFC 9211 `fwd-status`).
   */
  forwarded?: number;
  /** BYPASS: why; STALE: why it was served stale instead of rendered (`stale-if-error`). */
  reason?: string;
}

/**
 * Tells the client what the cache did: `x-isr-cache`, and — unless switched off — the standard
 * `Cache-Status` (RFC 9211), e.g. `express-isr; hit; ttl=42`, `express-isr; fwd=stale`,
 * `express-isr; fwd=stale; fwd-status=500; detail="stale-if-error"`,
 * `express-isr; fwd=uri-miss; stored`, `express-isr; fwd=bypass; detail="set-cookie"`.
 */
export function markState(
  res: ServerResponse,
  state: IsrState,
  detail: StateDetail,
  cacheStatus: boolean,
): void {
  res.setHeader('x-isr-cache', state);
  if (cacheStatus) res.setHeader('cache-status', cacheStatusValue(state, detail));
}

/** The `Cache-Status` value for a state (RFC 9211). */
export function cacheStatusValue(state: IsrState, detail: StateDetail): string {
  if (state === 'HIT') {
    return detail.ttl === undefined ? 'express-isr; hit' : `express-isr; hit; ttl=${detail.ttl}`;
  }
  if (state === 'STALE') {
    const status = detail.forwarded === undefined ? '' : `; fwd-status=${detail.forwarded}`;
    return `express-isr; fwd=stale${status}${detail.reason ? `; detail=${sfString(detail.reason)}` : ''}`;
  }
  if (state === 'MISS') {
    const stored = detail.stored ? '; stored' : '';
    const status = detail.forwarded === undefined ? '' : `; fwd-status=${detail.forwarded}`;
    return `express-isr; fwd=uri-miss${status}${stored}${detail.collapsed ? '; collapsed' : ''}`;
  }
  return `express-isr; fwd=bypass${detail.reason ? `; detail=${sfString(detail.reason)}` : ''}`;
}

/** An RFC 8941 string: printable ASCII with `"` and `\` escaped. */
function sfString(text: string): string {
  return `"${text.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, (c) => `\\${c}`)}"`;
}
