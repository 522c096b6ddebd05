/**
 * The option checks every purger shares (their errors through lib/validate.ts): retries, and
 * for the CDN APIs their account id, token, origins, batch size and API URL.
 */
import { fail, required } from '../validate';

/** How a purger retries a request that failed. Shared by every purger. */
export interface RetryOptions {
  /** Attempts per request, the first included. @default 4 */
  attempts?: number;
  /** Wait before the second attempt, in ms; doubled for each next one (with jitter). @default 500 */
  backoff?: number;
  /** Longest wait for one answer, in ms; later counts as a failed attempt. @default 10000 */
  timeout?: number;
}

/** The retry options with their defaults, checked. */
export interface Settled {
  attempts: number;
  backoff: number;
  timeout: number;
}

export function retrySettings(options: RetryOptions, where: string): Settled {
  const attempts = options.attempts ?? 4;
  const backoff = options.backoff ?? 500;
  const timeout = options.timeout ?? 10_000;
  if (!Number.isInteger(attempts) || attempts < 1)
    fail(`${where}: attempts`, 'a whole number >= 1', attempts);
  if (!isMs(backoff)) fail(`${where}: backoff`, 'a number of ms >= 0', backoff);
  if (!isMs(timeout)) fail(`${where}: timeout`, 'a number of ms >= 0', timeout);
  return { attempts, backoff, timeout };
}

function isMs(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0;
}

/** The options of a purger that calls a CDN's API. */
export interface ApiPurgeOptions extends RetryOptions {
  token: string;
  origins?: string[];
  batchSize?: number;
  apiUrl?: string;
}

/** A CDN API purger's options, checked, with their defaults. */
export interface CheckedApiOptions {
  /** The account's id (Cloudflare's zone, Fastly's service). */
  id: string;
  token: string;
  origins: Origin[];
  batchSize: number;
  /** The API's base URL, without a trailing slash. */
  api: string;
  settings: Settled;
}

/** Checks what every CDN API purger takes, at the purger's creation. */
export function checkApiOptions(
  options: ApiPurgeOptions,
  where: string,
  defaults: { id: string; batchSize: number; maxBatch: number; apiUrl: string },
): CheckedApiOptions {
  const id = checkString(
    (options as unknown as Record<string, unknown>)?.[defaults.id],
    where,
    defaults.id,
  );
  const token = checkString(options?.token, where, 'token');
  const origins = checkOrigins(options?.origins, where);
  const batchSize = checkBatch(options?.batchSize ?? defaults.batchSize, where, defaults.maxBatch);
  const api = (options?.apiUrl ?? defaults.apiUrl).replace(/\/+$/, '');
  return { id, token, origins, batchSize, api, settings: retrySettings(options, where) };
}

/** A site origin a purger names pages by. */
export interface Origin {
  /** `https://www.example.com` */
  origin: string;
  /** `www.example.com` (with the port when it is not the scheme's default). */
  host: string;
}

function checkOrigins(value: unknown, where: string): Origin[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) originError(where, value);
  return value.map((item) => {
    let url: URL;
    try {
      url = new URL(item as string);
    } catch {
      originError(where, value);
    }
    if (!/^https?:$/.test(url.protocol) || (url.pathname !== '/' && url.pathname !== ''))
      originError(where, value);
    return { origin: url.origin, host: url.host };
  });
}

function checkString(value: unknown, where: string, name: string): string {
  if (typeof value !== 'string' || value.trim() === '')
    required(`${where}: ${name}`, 'a non-empty string', value);
  return value;
}

function originError(where: string, value: unknown): never {
  fail(`${where}: origins`, 'a list of origins like "https://www.example.com"', value);
}

function checkBatch(value: unknown, where: string, max: number): number {
  if (!Number.isInteger(value) || (value as number) < 1 || (value as number) > max)
    fail(`${where}: batchSize`, `a whole number from 1 to ${max}`, value);
  return value as number;
}
