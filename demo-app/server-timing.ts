/**
 * Puts the cache state of each response in a `Server-Timing` header, for the footer's badge.
 *
 * The footer cannot print "HIT" into the HTML: the HTML is what the cache stores and replays,
 * so it is the same bytes whether this response was a MISS, a HIT or a STALE. The state is in
 * the response headers (`x-isr-cache`), which a page's scripts cannot read for their own
 * navigation — but browsers do expose `Server-Timing` to them, through
 * `performance.getEntriesByType('navigation')[0].serverTiming`. So this middleware copies what
 * the footer needs into `Server-Timing` just before the headers go out:
 *
 *   isr;desc="HIT", pid;desc="<process id>", age;desc="12", total;dur=0.8
 *
 * - `isr`: the `x-isr-cache` state of this response;
 * - `pid`: the process that answered (in `demo:cluster`, not always the one that rendered);
 * - `age`: the cache's own `Age` header (whole seconds since the render), only on a replay:
 *   the server's clock, so the footer's "age 12 s of 60 s" does not depend on the visitor's;
 * - `total`: milliseconds from this request reaching the app to its headers going out — the
 *   footer's "served in". For a replayed page the body follows in the same `end()`; for a MISS
 *   it includes the render.
 *
 * Mount it BEFORE `isr()`: it wraps `res.writeHead` first, so the cache's own capture wraps
 * it in turn and stores the headers as they were before this one was added; the header is
 * then recomputed for every response, stored or replayed. (Node's `res.end()` sends
 * implicit headers through `this.writeHead`, so every response passes here.)
 */
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { RequestHandler } from 'express';

export function cacheStateTiming(): RequestHandler {
  return (_req, res, next) => {
    const arrived = performance.now();
    const writeHead = res.writeHead;
    res.writeHead = function writeHeadWithTiming(this: ServerResponse, ...args: unknown[]) {
      const state = res.getHeader('x-isr-cache');
      if (typeof state === 'string') {
        const parts = [`isr;desc="${state}"`, `pid;desc="${process.pid}"`];
        const age = res.getHeader('age');
        if (age !== undefined && /^\d+$/.test(String(age))) parts.push(`age;desc="${age}"`);
        parts.push(`total;dur=${(performance.now() - arrived).toFixed(1)}`);
        res.setHeader('server-timing', parts.join(', '));
      }
      return (writeHead as (...a: unknown[]) => ServerResponse).apply(this, args);
    } as typeof res.writeHead;
    next();
  };
}
