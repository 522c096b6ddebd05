import type { OutgoingHttpHeaders } from 'node:http';
import { headerText } from '../request/eligibility';
import type { Captured } from './capture';
import { hopByHop } from './entry';

/** First retry of a failed cold render after about a second, doubling up to `regenerateTimeout`. */
const FIRST_RETRY_MS = 1000;
/** Failure records kept; the oldest are forgotten past this (they only shorten a backoff). */
const MAX_RENDER_FAILURES = 10_000;
/** Bytes of error pages held for sharing, all records together; the oldest go first past it. */
const MAX_HELD_BYTES = 16 * 1024 * 1024;

/** An error response of the app, kept to answer the requests for the same page meanwhile. */
export interface ErrorAnswer {
  status: number;
  headers: [string, string | string[]][];
  body: Buffer;
}

/** A cold page whose last render failed: what its requests get until `retryAt`. */
export interface RenderFailure {
  /** `failed`: the render threw, answered 5xx or was cut off; `timed-out`: it ran past `regenerateTimeout`. */
  kind: 'failed' | 'timed-out';
  /** Failures in a row. */
  attempt: number;
  /** When (`now()`, ms) one request may render the page again. */
  retryAt: number;
  /** The app's error page when it may be shared; otherwise a 503 (or 504) is made up. */
  answer: ErrorAnswer | undefined;
}

/**
 * Headers never repeated from a shared error page: besides the hop-by-hop ones (`hopByHop`), those
 * recomputed for each answer, validators (an error page is not a representation to revalidate)
 * and the cache's own state, which the answer sets afresh.
 */
const NOT_REPEATED = new Set([
  'content-length',
  'date',
  'set-cookie',
  'etag',
  'retry-after',
  'x-isr-cache',
  'cache-status',
]);

/**
 * Whether a finished cold render failed: it answered 5xx (a route that threw reaches the app's
 * error handler, which answers 500), or its response was cut off. A 2xx that may not be shared
 * (a cookie, `private`, too large) or a 4xx is an answer, not a failure.
 */
export function failedRender(response: Captured | undefined): boolean {
  return response !== undefined && (response.status >= 500 || response.incomplete === 'aborted');
}

/**
 * The error page that may answer other visitors: complete and within `maxBodySize`, no
 * `Set-Cookie`, not `private`/`no-store`/`no-cache`, and varying on nothing but
 * `Accept-Encoding` (the render saw no visitor's cookies, so nothing else can make it personal).
 */
export function shareableErrorAnswer(response: Captured): ErrorAnswer | undefined {
  if (response.incomplete !== undefined || response.status < 500) return undefined;
  if (!errorMayBeShared(response.headers)) return undefined;
  return { status: response.status, headers: repeatable(response.headers), body: response.body };
}

/**
 * Whether an error page's headers let it answer other visitors than the one it was rendered
 * for: no `Set-Cookie`, not `private`/`no-store`/`no-cache`, varying on nothing but
 * `Accept-Encoding` (the render saw no visitor's cookies, so nothing else can make it personal).
 */
export function errorMayBeShared(headers: OutgoingHttpHeaders): boolean {
  if (headers['set-cookie'] !== undefined) return false;
  if (/(^|,)\s*(private|no-store|no-cache)\b/i.test(headerText(headers['cache-control'])))
    return false;
  return headerText(headers.vary)
    .split(',')
    .map((name) => name.trim().toLowerCase())
    .every((name) => name === '' || name === 'accept-encoding');
}

function repeatable(headers: OutgoingHttpHeaders): [string, string | string[]][] {
  const hop = hopByHop(headers);
  const kept: [string, string | string[]][] = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || NOT_REPEATED.has(lower) || hop.has(lower)) continue;
    kept.push([lower, Array.isArray(value) ? value.map(String) : String(value)]);
  }
  return kept;
}

/**
 * Cold pages whose render failed, per variant key, each with a backoff (about 1 s, doubling,
 * capped at `regenerateTimeout`) measured on the injectable clock. While it runs, the page's
 * requests are answered from the record instead of each starting a render of its own (the
 * `hit-for-miss` of other caches, but answering rather than forwarding). Bounded in records
 * and in bytes of error pages held.
 */
export class RenderFailures {
  private readonly records = new Map<string, RenderFailure>();
  private heldBytes = 0;

  constructor(
    private readonly now: () => number,
    private readonly maxBackoffMs: number,
  ) {}

  /** Records one more failure of `key`'s render and returns it, backoff included. */
  record(key: string, kind: RenderFailure['kind'], answer: ErrorAnswer | undefined): RenderFailure {
    const attempt = (this.records.get(key)?.attempt ?? 0) + 1;
    const delay = Math.min(this.maxBackoffMs, FIRST_RETRY_MS * 2 ** Math.min(attempt - 1, 30));
    const failure: RenderFailure = { kind, attempt, retryAt: this.now() + delay, answer };
    this.clear(key); // re-inserted last: the Map's order is oldest failure first
    this.records.set(key, failure);
    this.heldBytes += answer?.body.length ?? 0;
    for (const [oldest] of this.records) {
      if (this.records.size <= MAX_RENDER_FAILURES && this.heldBytes <= MAX_HELD_BYTES) break;
      this.clear(oldest);
    }
    return failure;
  }

  /** The failure whose backoff is still running, if any. */
  active(key: string): RenderFailure | undefined {
    const failure = this.records.get(key);
    return failure !== undefined && this.now() < failure.retryAt ? failure : undefined;
  }

  /** A render of `key` answered: its failures are forgotten. */
  clear(key: string): void {
    const failure = this.records.get(key);
    if (failure === undefined) return;
    this.heldBytes -= failure.answer?.body.length ?? 0;
    this.records.delete(key);
  }
}
