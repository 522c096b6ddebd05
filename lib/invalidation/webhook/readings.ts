import type { HealthReport } from '../../observability/health';
import { HttpError } from './input';
import type { Revalidatable } from './router';

/**
 * The read-only routes beside the webhook, behind the same secret (the router checks it):
 * `GET /entry?path=…`, `GET /entries?prefix=…&limit=…` (README, "Inspecting pages") and
 * `GET /health` (README, "Seeing the fleet"). Each exists when the cache has the method it
 * reads, as `isr()` does.
 */
export function isReading(cache: Revalidatable, pathname: string): boolean {
  if (pathname === '/entry' || pathname === '/entries')
    return cache.entry !== undefined || cache.entries !== undefined;
  return pathname === '/health' && cache.health !== undefined;
}

/** The answer of a reading route: its status and JSON body. */
export async function read(
  cache: Revalidatable,
  pathname: string,
  query: URLSearchParams,
): Promise<{ status: number; body: unknown }> {
  if (pathname === '/health') {
    const report = await (cache.health as () => Promise<HealthReport>)();
    // 200 while the store does not answer: the instance serves all the same (fail open), and a
    // load balancer pulling every instance at once would turn a Redis outage into a site
    // outage. A monitor that should alert on it asks `?strict=1` and gets a 503.
    const strict = query.get('strict') === '1' || query.get('strict') === 'true';
    return { status: report.status === 'ok' || !strict ? 200 : 503, body: report };
  }
  if (pathname === '/entry') {
    const path = query.get('path');
    if (path === null || !path.startsWith('/')) {
      throw new HttpError(400, 'give the page as ?path=/… (a path starting with "/")');
    }
    const info = await cache.entry?.(path);
    if (info === undefined) throw new HttpError(404, `no cached page for ${path}`);
    return { status: 200, body: info };
  }
  const prefix = query.get('prefix') ?? '/';
  const limit = Number(query.get('limit') ?? 100);
  if (!prefix.startsWith('/')) throw new HttpError(400, 'prefix must start with "/"');
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new HttpError(400, 'limit must be a whole number from 1 to 1000');
  }
  return { status: 200, body: await cache.entries?.({ prefix, limit }) };
}
