import type { RevalidateMode } from '../types';
import type { Settled } from './options';

/** What a purger is given: the `onRevalidate` event. */
export interface PurgeEvent {
  paths: string[];
  tags: string[];
  mode: RevalidateMode;
  /**
   * How `paths` match: one page (every query variant), or everything below each (`layout`).
   * Absent (an event made by hand) counts as `page`.
   */
  type?: 'page' | 'layout';
}

/** The `onRevalidate` function a purger returns. */
export type Purger = (event: PurgeEvent) => Promise<void>;

/** One request a purge could not get through, after every attempt. */
export interface PurgeFailure {
  /** What it purged, e.g. `tags posts post-a at https://api.fastly.com/service/x/purge`. */
  target: string;
  /** The last answer's status, when there was one. */
  status?: number;
  /** The last error or answer, shortened. */
  reason: string;
  attempts: number;
}

/**
 * Thrown by a purger when some of its requests failed, after every batch was tried: the cache
 * reports it to `onError` (phase `on-revalidate`). `failures` says which.
 */
export class PurgeError extends Error {
  constructor(
    readonly cdn: string,
    readonly failures: PurgeFailure[],
  ) {
    const first = failures[0];
    super(
      `[express-isr] ${cdn} purge: ${failures.length} request${failures.length === 1 ? '' : 's'} failed, e.g. ${first?.target}: ${first?.reason}`,
    );
    this.name = 'PurgeError';
  }
}

/** One HTTP request of a purge. */
export interface PurgeRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
  /** For failures: what this request purges. */
  target: string;
  /** Whether a 2xx answer's body says it failed (Cloudflare's `success: false`). */
  refused?: (body: string) => string | undefined;
}

/** Longest wait a `Retry-After` may ask for, in ms: a purge later than that is not worth it. */
const MAX_RETRY_AFTER = 60_000;

/**
 * Sends one request, retrying a network error, a timeout, 408, 429 and 5xx with exponential
 * backoff (full jitter) or the answer's `Retry-After`; any other answer is final. Resolves to
 * the failure, or `undefined` once a 2xx came back.
 */
export async function send(
  request: PurgeRequest,
  settings: Settled,
): Promise<PurgeFailure | undefined> {
  let last: { status?: number; reason: string } = { reason: 'not sent' };
  let made = 0;
  for (let attempt = 1; attempt <= settings.attempts; attempt += 1) {
    made = attempt;
    let retryAfter: number | undefined;
    try {
      const response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(settings.timeout),
      });
      const text = await response.text();
      if (response.ok) {
        const refusal = request.refused?.(text);
        if (refusal === undefined) return undefined;
        // A 2xx that says it did nothing is an answer, not an outage: not retried.
        return {
          target: request.target,
          status: response.status,
          reason: refusal,
          attempts: attempt,
        };
      }
      last = { status: response.status, reason: `${response.status} ${shorten(text)}` };
      if (!retryable(response.status)) break;
      retryAfter = retryAfterMs(response.headers.get('retry-after'));
    } catch (error) {
      last = { reason: (error as Error)?.message ?? String(error) };
    }
    if (attempt < settings.attempts) {
      const exponential = settings.backoff * 2 ** (attempt - 1);
      await sleep(retryAfter ?? exponential / 2 + Math.random() * (exponential / 2));
    }
  }
  return {
    target: request.target,
    status: last.status,
    reason: last.reason,
    attempts: made,
  };
}

/** Sends the requests one after another (CDN purge APIs are rate limited) and collects the failures. */
async function sendAll(cdn: string, requests: PurgeRequest[], settings: Settled): Promise<void> {
  const failures: PurgeFailure[] = [];
  for (const request of requests) {
    const failure = await send(request, settings);
    if (failure !== undefined) failures.push(failure);
  }
  if (failures.length > 0) throw new PurgeError(cdn, failures);
}

/** Splits `items` into batches of at most `size` items and `maxBytes` bytes (joined by one byte). */
export function batches(items: readonly string[], size: number, maxBytes = Infinity): string[][] {
  const out: string[][] = [];
  let current: string[] = [];
  let bytes = 0;
  for (const item of items) {
    const cost = Buffer.byteLength(item) + (current.length > 0 ? 1 : 0);
    if (current.length > 0 && (current.length >= size || bytes + cost > maxBytes)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(item);
    bytes += Buffer.byteLength(item) + (current.length > 1 ? 1 : 0);
  }
  if (current.length > 0) out.push(current);
  return out;
}

/** A hard purge but for `stale`, where the CDN has a soft one. */
export function isSoft(mode: RevalidateMode): boolean {
  return mode === 'stale';
}

export function describeList(items: readonly string[]): string {
  const shown = items.slice(0, 3).join(' ');
  return items.length > 3 ? `${shown} (+${items.length - 3})` : shown;
}

function retryable(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  const seconds = Number(value);
  const ms = Number.isFinite(seconds) ? seconds * 1000 : Date.parse(value) - Date.now();
  return Number.isFinite(ms) ? Math.min(MAX_RETRY_AFTER, Math.max(0, ms)) : undefined;
}

function shorten(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 200)}…` : flat;
}

function sleep(ms: number): Promise<void> {
  // Unref'd: a purge retrying in the background never keeps a process from exiting.
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * A purger from what each event asks of the CDN: its requests, sent one after another with
 * the purger's retries; a failure of any is thrown as a {@link PurgeError} naming `cdn`.
 */
export function purger(
  cdn: string,
  settings: Settled,
  requestsFor: (event: PurgeEvent) => PurgeRequest[],
): Purger {
  return (event) => sendAll(cdn, requestsFor(event), settings);
}
