import type { Engine } from '../engine';
import { debug } from '../observability/report';
import { claim } from '../render/claim';
import type { RequestHandler } from '../types';
import { fail, invalid } from '../validate';
import { renderInBackground } from './background-render';

/** Options of `cache.prerender()`. */
export interface PrerenderOptions {
  /** Pages rendered at once. @default 4 */
  concurrency?: number;
  /** The app to render through; defaults to the `app` option, or the app seen on a request. */
  app?: RequestHandler;
}

/** What happened to one path. */
export interface PrerenderResult {
  path: string;
  /**
   * `stored`; `fresh` (a fresh page was already stored); `skipped` (another instance renders
   * it); `newer-kept` (a newer render was stored meanwhile); `uncacheable`; `failed` (the
   * render failed, or the store was unavailable).
   */
  outcome: 'stored' | 'fresh' | 'skipped' | 'newer-kept' | 'uncacheable' | 'failed';
  /** Why, for `uncacheable` and `failed`. */
  reason?: string;
}

/**
 * Renders pages ahead of their first visitor (Next.js's `generateStaticParams`): each path is
 * rendered through the app like a background regeneration and stored. A page already fresh in
 * the store is left alone, and an entry is never replaced by an older render, so prerendering
 * at the start-up of many instances costs one render per page, not one per instance.
 */
export async function prerender(
  engine: Engine,
  paths: readonly string[],
  options: PrerenderOptions = {},
): Promise<PrerenderResult[]> {
  if (!Array.isArray(paths) || !paths.every((p) => typeof p === 'string' && p.startsWith('/'))) {
    fail('prerender: paths', 'an array of paths starting with "/"', paths);
  }
  const { concurrency = 4 } = options;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    fail('prerender: concurrency', 'a whole number >= 1', concurrency);
  }
  const app = options.app ?? engine.app;
  if (app === undefined) {
    invalid('prerender needs the app to render through: isr({ app }) or prerender(paths, { app })');
  }
  const unique = [...new Set(paths)];
  const results: PrerenderResult[] = new Array(unique.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < unique.length; i = next++) {
      results[i] = await prerenderOne(engine, app, unique[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, unique.length) }, worker));
  return results; // in the order the paths were given
}

async function prerenderOne(
  engine: Engine,
  app: RequestHandler,
  path: string,
): Promise<PrerenderResult> {
  const { options } = engine;
  const { url } = engine.canonical(path);
  // No visitor is involved: the render sees the configured host, nothing else.
  const requestHeaders = { host: options.host ?? 'localhost', 'accept-encoding': 'identity' };
  const key = engine.keyForUrl(url, { ...requestHeaders });
  const isFresh = async () => {
    const found = await engine.lookup(key, requestHeaders);
    const fresh =
      found.entry !== undefined && (await engine.freshness(found.entry, found)).state === 'fresh';
    return { fresh, variantKey: found.variantKey };
  };
  const before = await isFresh();
  if (before.fresh) return { path, outcome: 'fresh' };
  const failed = (error: unknown): PrerenderResult => {
    engine.reporter.error(error, { phase: 'prerender', key });
    return { path, outcome: 'failed', reason: (error as Error).message };
  };
  return claim<PrerenderResult>(engine, before.variantKey, {
    taken: async () => ({ path, outcome: 'skipped' }),
    storedMeanwhile: () =>
      isFresh().then((now) => (now.fresh ? { path, outcome: 'fresh' } : undefined), failed),
    render: () => renderAndSave(engine, app, path, url, key, requestHeaders).catch(failed),
  });
}

async function renderAndSave(
  engine: Engine,
  app: RequestHandler,
  path: string,
  url: string,
  key: string,
  requestHeaders: Record<string, string>,
): Promise<PrerenderResult> {
  const result = await renderInBackground(engine, app, url, requestHeaders);
  if (result.entry === undefined)
    return { path, outcome: 'uncacheable', reason: result.uncacheable };
  const saved = await engine.save(key, result.entry, result.vary);
  debug('prerender: %s %s', url, saved);
  if (saved === 'unavailable')
    return { path, outcome: 'failed', reason: 'the store was unavailable' };
  if (saved === 'unsure')
    return {
      path,
      outcome: 'failed',
      reason: 'an invalidation came during the render: not stored, prerender it again',
    };
  return { path, outcome: saved };
}
