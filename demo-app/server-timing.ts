/**
 * Puts the cache state of each response in a `Server-Timing` header, for the footer.
 *
 * The footer cannot print "HIT" into the HTML: the HTML is what the cache stores and replays,
 * so it is the same bytes whether this response was a MISS, a HIT or a STALE. The state is in
 * the response headers (`x-isr-cache`), which a page's scripts cannot read for their own
 * navigation — but browsers do expose `Server-Timing` to them, through
 * `performance.getEntriesByType('navigation')[0].serverTiming`. So this middleware copies
 * `x-isr-cache` into `Server-Timing: isr;desc="HIT", pid;desc="<process id>"` just before the
 * headers go out, and the footer's script reads it (see `views.ts`).
 *
 * Mount it BEFORE `isr()`: it wraps `res.writeHead` first, so the cache's own capture wraps
 * it in turn and stores the headers as they were before this one was added; the header is
 * then recomputed for every response, stored or replayed. (Node's `res.end()` sends
 * implicit headers through `this.writeHead`, so every response passes here.)
 */
import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';

export function cacheStateTiming(): RequestHandler {
  return (_req, res, next) => {
    const writeHead = res.writeHead;
    res.writeHead = function writeHeadWithTiming(this: ServerResponse, ...args: unknown[]) {
      const state = res.getHeader('x-isr-cache');
      if (typeof state === 'string') {
        res.setHeader('server-timing', `isr;desc="${state}", pid;desc="${process.pid}"`);
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.writeHead;
    next();
  };
}
