import type { IncomingMessage } from 'node:http';
import { varyNames } from '../request/eligibility';
import type { CacheEntry } from '../types';

/** Whether a cached variant may answer this request: every header it varies on matches. */
export function variantMatches(entry: CacheEntry, headers: IncomingMessage['headers']): boolean {
  for (const name of varyNames(entry.headers)) {
    const value = headers[name];
    const text = (Array.isArray(value) ? value.join(', ') : (value ?? ''))
      .trim()
      .replace(/\s+/g, ' ');
    const seen = (entry.requestHeaders[name] ?? '').trim().replace(/\s+/g, ' ');
    if (text !== seen) return false;
  }
  return true;
}
