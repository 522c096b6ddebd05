/**
 * The `Cache-Control` a page is sent downstream with (to CDNs and other shared caches): the
 * `cacheControl` option's builder, and the default one.
 */

export type CacheState = 'HIT' | 'STALE' | 'MISS';

/** Builds the `Cache-Control` sent downstream, or `undefined` for none. */
export type CacheControlBuilder = (info: {
  revalidate: number | false;
  /** Seconds it may be served stale once stale (`false`: no limit). */
  maxStale: number | false;
  /** Seconds past `maxStale` it may stand in for a failed render (`false`: no limit). */
  staleIfError: number | false;
  age: number;
  state: CacheState;
  /** The app's own Cache-Control, if it set one. */
  appCacheControl: string | undefined;
}) => string | undefined;

/**
 * The `Cache-Control` a page goes downstream with: the builder's (the `cacheControl` option),
 * else the app's own. The one place both answers take it from: the MISS relayed as it renders
 * and every replay of the stored page.
 */
export function downstreamCacheControl(
  builder: CacheControlBuilder | undefined,
  page: { revalidate: number | false; maxStale: number | false; staleIfError: number | false },
  age: number,
  state: CacheState,
  appCacheControl: string | undefined,
): string | undefined {
  const { revalidate, maxStale, staleIfError } = page;
  return (
    builder?.({ revalidate, maxStale, staleIfError, age, state, appCacheControl }) ??
    appCacheControl
  );
}

/** Upper bound for "forever" in Cache-Control: numbers there must be finite. */
const ONE_YEAR = 31_536_000;

/**
 * The default Cache-Control for shared caches in front (CDNs): the app's own directives, with
 * the page's own policy, so that a CDN keeps it as this cache does. The `Age` header sent with
 * it counts the seconds already spent (RFC 9111 §4.2.3), so the lifetimes are whole: `s-maxage`
 * is the window (0 once stale), `stale-while-revalidate` how long it may then be served stale
 * (RFC 5861: after it went stale) and `stale-if-error` that plus `staleIfError`. A STALE
 * answer counts its stale time from now: a CDN then refetches it sooner, never later.
 * Browsers ignore all three.
 */
export const defaultCacheControl: CacheControlBuilder = ({
  revalidate,
  maxStale,
  staleIfError,
  state,
  appCacheControl,
}) => {
  const window = state === 'STALE' ? 0 : revalidate === false ? ONE_YEAR : revalidate;
  const stale = maxStale === false ? ONE_YEAR : maxStale;
  const onError = staleIfError === false ? ONE_YEAR : Math.min(ONE_YEAR, stale + staleIfError);
  const ifError = staleIfError === 0 ? '' : `, stale-if-error=${onError}`;
  return `${appDirectives(appCacheControl)}s-maxage=${window}, stale-while-revalidate=${stale}${ifError}`;
};

/** The app's directives without the three we set, parsed once per distinct header value. */
const directivesMemo = new Map<string, string>();

function appDirectives(appCacheControl: string | undefined): string {
  if (appCacheControl === undefined) return '';
  let kept = directivesMemo.get(appCacheControl);
  if (kept === undefined) {
    const own = appCacheControl
      .split(',')
      .map((d) => d.trim())
      .filter((d) => d !== '' && !/^(s-maxage|stale-while-revalidate|stale-if-error)\b/i.test(d));
    kept = own.length > 0 ? `${own.join(', ')}, ` : '';
    if (directivesMemo.size >= 256) directivesMemo.clear(); // apps send a handful of values
    directivesMemo.set(appCacheControl, kept);
  }
  return kept;
}
