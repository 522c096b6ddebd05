import type { Engine } from '../engine';
import { buildEntry } from '../render/entry';
import { PageRender } from '../render/page-render';
import { codingProblem, varyNames } from '../request/eligibility';
import { withTimeout } from '../timeout';
import type { CacheEntry, RequestHandler } from '../types';

/** A background render's outcome: a page to store, or why there is none to store. */
export type BackgroundResult =
  | { entry: CacheEntry; vary: string[] }
  | { entry: undefined; uncacheable: string; startedAt: number };

/**
 * Renders `url` through the app for a synthetic anonymous request carrying exactly
 * `requestHeaders`, within `regenerateTimeout`, and turns a complete answer whose status is
 * 2xx or one of `statuses` into an entry (with its br/gzip variants), or says why it may not be
 * stored (too large, a cookie…). Rejects when the app throws, answers another status, falls
 * through to the final handler, cuts the response off or runs past the deadline: the caller
 * keeps what it had. Used by regeneration and prerendering alike.
 */
export async function renderInBackground(
  engine: Engine,
  app: RequestHandler,
  url: string,
  requestHeaders: Record<string, string>,
  secure = false,
): Promise<BackgroundResult> {
  const { options } = engine;
  const render = new PageRender(engine, url, requestHeaders, secure);
  const { res } = render;
  const captured = render.capture();
  let failure: Error | undefined;
  let result: Awaited<typeof captured>;
  try {
    app(render.req, res, (err?: unknown) => {
      // Reached only when no route answered or an error got past the app's handlers.
      failure = err instanceof Error ? err : new Error(err ? String(err) : 'no route answered');
      if (!res.headersSent) res.statusCode = 500;
      res.end();
    });
    result = await withTimeout(
      captured,
      options.regenerateTimeout,
      `the render took longer than ${options.regenerateTimeout} ms`,
    );
    if (failure !== undefined) throw failure;
    if (result.incomplete === 'aborted') throw new Error('the response was aborted');
  } catch (error) {
    res.destroy(); // stop whatever the route is still doing from writing into a dead response
    throw error;
  }
  // A status the cache may store (a 404 with `statuses: [200, 404]`) is the page's new answer;
  // any other non-2xx is a failure, and the page that was there stays.
  if ((result.status < 200 || result.status >= 300) && !options.statuses.includes(result.status))
    throw new Error(`the app answered ${result.status}`);
  const policy = render.policy(result.headers);
  const uncacheable =
    result.incomplete ?? render.uncacheable(result.status, result.headers, policy);
  // A body the cache cannot decode is a failed render here, not a page that may not be stored:
  // the page that was there stays.
  if (uncacheable !== undefined && uncacheable === codingProblem(result.headers))
    throw new Error(`cannot store ${uncacheable}`);
  if (uncacheable !== undefined)
    return { entry: undefined, uncacheable, startedAt: render.generatedAt };
  const { compressThreshold } = options;
  const entry = await buildEntry(result, { ...render.entryContext(policy), compressThreshold });
  return { entry, vary: varyNames(result.headers) };
}
