import type { OutgoingHttpHeaders } from 'node:http';
import { windowsFromHeaders } from '../invalidation/header-policy';
import type { ResolvedOptions } from '../options';
import type { IsrResponse, ResponseIsrConfig } from '../types';
import { checkSeconds, fail, invalid } from '../validate';

const CONFIG = Symbol('express-isr.config');

interface Collected {
  revalidate?: number | false;
  maxStale?: number | false;
  staleIfError?: number | false;
  tags: string[];
}

/** A page's policy: what the route said, the options filling in what it did not. */
export interface PagePolicy {
  revalidate: number | false;
  maxStale: number | false;
  staleIfError: number | false;
  tags: string[];
}

/**
 * `res.isr({ revalidate, tags })`: may be called any number of times while a response is
 * produced; tags accumulate, the last revalidate wins. One shared function, installed as an
 * own property of each response (Express's prototypes are never touched).
 */
function setResponseConfig(this: IsrResponse, config: ResponseIsrConfig): void {
  if (typeof config !== 'object' || config === null) {
    invalid('res.isr() takes an object like { revalidate: 60, maxStale: 3600, tags: ["posts"] }');
  }
  const collected = collectedOf(this);
  if (config.revalidate !== undefined) {
    checkSeconds(config.revalidate, 'res.isr({ revalidate })');
    collected.revalidate = config.revalidate;
  }
  if (config.maxStale !== undefined) {
    checkSeconds(config.maxStale, 'res.isr({ maxStale })');
    collected.maxStale = config.maxStale;
  }
  if (config.staleIfError !== undefined) {
    checkSeconds(config.staleIfError, 'res.isr({ staleIfError })');
    collected.staleIfError = config.staleIfError;
  }
  if (config.tags !== undefined) {
    // Only the shape is checked here: a wrong type fails on every request, so it shows in
    // development. What a tag contains is data (a slug from a CMS) and is not refused: a
    // TypeError thrown inside the route would be a 500 for the visitor of one page, for a
    // cache hint. Any string works for `revalidateTag`; the CDN header encodes or leaves out
    // what a header cannot carry, with a coded warning (request/cdn-tags.ts, README: `res.isr()`).
    if (
      !Array.isArray(config.tags) ||
      !config.tags.every((t) => typeof t === 'string' && t !== '')
    ) {
      fail('res.isr({ tags })', 'an array of non-empty strings', config.tags);
    }
    for (const tag of config.tags) if (!collected.tags.includes(tag)) collected.tags.push(tag);
  }
}

function collectedOf(res: IsrResponse): Collected {
  const holder = res as unknown as Record<symbol, Collected | undefined>;
  let collected = holder[CONFIG];
  if (collected === undefined) {
    collected = { tags: [] };
    holder[CONFIG] = collected;
  }
  return collected;
}

export function installResponseConfig(res: IsrResponse): void {
  res.isr = setResponseConfig;
}

/**
 * The page's policy, field by field: what the route said with `res.isr()`, else what its
 * caching headers say (`policyFromHeaders`, see invalidation/header-policy.ts), else the options.
 */
export function responseConfig(
  res: IsrResponse,
  options: Pick<ResolvedOptions, 'revalidate' | 'maxStale' | 'staleIfError' | 'policyFromHeaders'>,
  headers: OutgoingHttpHeaders,
): PagePolicy {
  const collected = (res as unknown as Record<symbol, Collected | undefined>)[CONFIG];
  const said = options.policyFromHeaders ? windowsFromHeaders(headers) : {};
  return {
    revalidate: collected?.revalidate ?? said.revalidate ?? options.revalidate,
    maxStale: collected?.maxStale ?? said.maxStale ?? options.maxStale,
    staleIfError: collected?.staleIfError ?? said.staleIfError ?? options.staleIfError,
    tags: collected?.tags ?? [],
  };
}
