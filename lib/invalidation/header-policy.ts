import type { OutgoingHttpHeaders } from 'node:http';
import { headerText } from '../request/eligibility';

/** What a response's caching headers say of its page's windows (absent: not said). */
export interface HeaderWindows {
  revalidate?: number;
  maxStale?: number;
  staleIfError?: number;
  /** The field the windows were read from, for debug lines and the README's table. */
  from?: 'cdn-cache-control' | 'surrogate-control' | 'cache-control';
}

/**
 * The page's windows as a shared cache in front would read them from the response (README,
 * "Caching headers set the policy"), for frameworks that cannot call `res.isr()`:
 *
 * - one field is read, the most targeted one present: `CDN-Cache-Control` (RFC 9213 §2.2: a
 *   cache that uses a targeted field ignores `Cache-Control`), else `Surrogate-Control` (Edge
 *   Architecture 1.0), else `Cache-Control`;
 * - freshness from `max-age` in a targeted field, from `s-maxage` in `Cache-Control`. A
 *   `max-age` alone in `Cache-Control` is the browser's (and Express's `res.sendFile` sends
 *   `max-age=0` by default): it leaves the `revalidate` option in charge;
 * - `stale-while-revalidate` → `maxStale`, `stale-if-error` → `staleIfError` (RFC 5861);
 *   `Surrogate-Control: max-age=60+600` says both at once;
 * - `must-revalidate` / `proxy-revalidate`: never served stale (RFC 9111 §5.2.2.2, §5.2.2.8);
 * - `no-store`, `no-cache` or `private` in a targeted field: not stored (`revalidate: 0`), as
 *   in `Cache-Control` (request/eligibility.ts), which a targeted field never overrides for those.
 *
 * A freshness of 0 means "not stored", like `res.isr({ revalidate: 0 })`.
 */
export function windowsFromHeaders(headers: OutgoingHttpHeaders): HeaderWindows {
  const text = headerText(headers['cache-control']);
  const general =
    text.trim() === '' ? {} : read(directivesOf(text, 'cache-control'), 'cache-control');
  for (const from of ['cdn-cache-control', 'surrogate-control'] as const) {
    const targeted = headerText(headers[from]);
    if (targeted.trim() === '') continue;
    // What the targeted field leaves unsaid (`CDN-Cache-Control: public`), Cache-Control's
    // shared-cache directives say: never a window longer than one of them gives.
    const { from: _general, ...rest } = general;
    return { ...rest, ...read(directivesOf(targeted, from), from) };
  }
  return general;
}

function read(
  directives: Map<string, string | undefined>,
  from: NonNullable<HeaderWindows['from']>,
): HeaderWindows {
  const windows: HeaderWindows = { from };
  if (
    from !== 'cache-control' &&
    ['no-store', 'no-cache', 'private'].some((d) => directives.has(d))
  )
    return { from, revalidate: 0 };
  // A shared cache's freshness: `s-maxage`; in a field aimed at caches like this one, its
  // `max-age` too (RFC 9213 §2.1), `s-maxage` first. `Cache-Control: max-age` is the browser's.
  const fresh =
    directives.get('s-maxage') ??
    (from === 'cache-control' ? undefined : directives.get('max-age'));
  if (fresh !== undefined) {
    // Surrogate-Control's `max-age=fresh+stale`.
    const [seconds, stale] = fresh.split('+');
    windows.revalidate = deltaSeconds(seconds);
    if (stale !== undefined) windows.maxStale = deltaSeconds(stale);
  }
  const swr = deltaSeconds(directives.get('stale-while-revalidate'));
  if (swr !== undefined) windows.maxStale = swr;
  const sie = deltaSeconds(directives.get('stale-if-error'));
  if (sie !== undefined) windows.staleIfError = sie;
  if (directives.has('must-revalidate') || directives.has('proxy-revalidate')) {
    windows.maxStale = 0;
    windows.staleIfError = 0;
  }
  for (const key of ['revalidate', 'maxStale', 'staleIfError'] as const) {
    if (windows[key] === undefined) delete windows[key];
  }
  return windows;
}

/** A delta-seconds value (RFC 9111 §1.2.2), or `undefined` when it is not one. */
function deltaSeconds(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,10}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/**
 * Directive names (lower case) and values, quotes removed. `Surrogate-Control` directives
 * aimed at one named surrogate (`max-age=60;edge1`) are not ours and are skipped.
 */
function directivesOf(text: string, from: string): Map<string, string | undefined> {
  const directives = new Map<string, string | undefined>();
  // Split on the commas outside quoted strings (RFC 9110 §5.6.4): `foo="a, s-maxage=9"` is one
  // directive, whatever it quotes.
  for (const part of text.match(/(?:[^,"]|"(?:[^"\\]|\\.)*")+/g) ?? []) {
    const [directive, target] = part.split(';');
    if (from === 'surrogate-control' && target !== undefined && target.trim() !== '') continue;
    const match = /^\s*([A-Za-z-]+)\s*(?:=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s"]*)))?\s*$/.exec(
      directive ?? '',
    );
    if (match === null) continue;
    const name = match[1].toLowerCase();
    if (!directives.has(name)) directives.set(name, match[2] ?? match[3]);
  }
  return directives;
}
