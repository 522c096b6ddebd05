/**
 * The admin's live cache panel, server side: what is cached (from `cache.entries()`), and a
 * Server-Sent Events stream at `/admin/events` that tells the page what the cache does as it
 * happens (from `cache.on(...)`), with a fresh table after every change.
 *
 * SSE rather than polling or WebSockets: one long GET that the browser's `EventSource`
 * reconnects by itself, no dependency, and it goes through the admin's Basic auth like any
 * other admin page — so the cache sees `Authorization` and BYPASSes it (an event stream must
 * never be stored), and the admin already says `Cache-Control: no-store`.
 *
 * Each stream adds its own listeners and removes them with `cache.off` when the browser goes
 * away, so a closed tab costs nothing. Events only come from this process: in `demo:cluster`
 * the table (read from Redis) shows every worker's pages, the events only this worker's.
 */
import type { Request, Response } from 'express';
import type { EntryInfo, IsrEventName, IsrEvents, IsrMiddleware } from '../lib';

export interface PanelSnapshot {
  entries: EntryInfo[];
  truncated: boolean;
  /** How long the last background regeneration of each page took, as seen by this process. */
  durations: ReadonlyMap<string, number>;
}

export interface CachePanel {
  snapshot(): Promise<PanelSnapshot>;
  /** `GET /admin/events`: the stream. `rows` turns a snapshot into the table's HTML. */
  stream(req: Request, res: Response, rows: (snapshot: PanelSnapshot) => string): void;
}

/** The events the panel shows; those marked true can change the table (so it is re-read). */
const FORWARDED: [IsrEventName, boolean][] = [
  ['hit', false],
  ['stale', true],
  ['miss', true],
  ['regenerate:start', true],
  ['regenerate:success', true],
  ['regenerate:error', true],
  ['revalidate', true],
];
/** At most this many pages in the table: it is a demo panel, not a store browser. */
const LIMIT = 200;
/** A comment line this often keeps proxies and idle timeouts from closing a quiet stream. */
const HEARTBEAT_MS = 15_000;

export function cachePanel(cache: IsrMiddleware): CachePanel {
  // One listener for the app's lifetime (not per stream): a page's last regeneration time
  // should be there for a panel opened after it happened. Bounded by the number of pages.
  const durations = new Map<string, number>();
  cache.on('regenerate:success', ({ key, duration }) => {
    if (durations.size >= 1000 && !durations.has(key)) durations.clear();
    durations.set(key, duration);
  });

  async function snapshot(): Promise<PanelSnapshot> {
    const { entries, truncated } = await cache.entries({ limit: LIMIT });
    entries.sort((a, b) => a.url.localeCompare(b.url));
    return { entries, truncated, durations };
  }

  function stream(_req: Request, res: Response, rows: (snapshot: PanelSnapshot) => string) {
    res.status(200).set({
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no', // nginx in front: do not hold the events back
    });
    res.flushHeaders();
    res.write('retry: 2000\n\n');

    let open = true;
    const send = (event: string, data: unknown) => {
      if (open) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };

    // The table is re-read after a change, once whatever the change started (a MISS's render
    // and store, a regeneration) is done — `cache.idle()` — so the row shows the outcome, not
    // the moment before it. Events arriving meanwhile fold into one more read.
    let reading = false;
    let again = false;
    const refresh = async () => {
      if (reading) {
        again = true;
        return;
      }
      reading = true;
      try {
        do {
          again = false;
          await cache.idle();
          const current = await snapshot();
          send('entries', {
            html: rows(current),
            count: current.entries.length,
            truncated: current.truncated,
          });
        } while (again && open);
      } catch (error) {
        send('problem', { message: error instanceof Error ? error.message : String(error) });
      } finally {
        reading = false;
      }
    };

    const stops = FORWARDED.map(([name, changesTable]) => {
      const listener = (event: IsrEvents[typeof name]) => {
        send('cache', describe(name, event));
        if (changesTable) void refresh();
      };
      cache.on(name, listener);
      return () => cache.off(name, listener);
    });
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), HEARTBEAT_MS);
    heartbeat.unref();

    // `res` 'close' (not `req`'s, which fires once a GET's empty body is read): the browser
    // closed the tab, the connection dropped, or the server is shutting down.
    res.on('close', () => {
      open = false;
      clearInterval(heartbeat);
      for (const stop of stops) stop();
    });
    void refresh(); // the current table at once: the page's own copy may be a moment old
  }

  return { snapshot, stream };
}

/** An event as JSON for the page: errors become their message, everything else as it is. */
function describe(type: IsrEventName, event: object): Record<string, unknown> {
  const out: Record<string, unknown> = { type, at: Date.now() };
  for (const [name, value] of Object.entries(event)) {
    out[name] = value instanceof Error ? value.message : value;
  }
  return out;
}
