/**
 * The cache key: the request's path plus its query string, normalised so that two spellings
 * of one URL share an entry and two different URLs never do (RFC 3986 §6.2.2).
 *
 * - Percent-encoded unreserved characters are decoded (`%62` ≡ `b`), every other
 *   percent-encoding is upper-cased (`%2f` ≡ `%2F`). Reserved characters such as `%2F` stay
 *   encoded: `/a%2Fb` is not `/a/b`.
 * - Query parameters are sorted by name (stably, so repeated names keep their order, which
 *   apps read as an array) and filtered by the `ignoreQuery` / `allowQuery` options.
 * - Nothing else is rewritten: the key is also the URL the stored render is given, so what is
 *   cached under a key is exactly what the app answers for that key.
 */

export type QueryFilter = (name: string) => boolean;

const PERCENT = /%([0-9a-fA-F]{2})/g;

function normalizePercent(text: string): string {
  if (!text.includes('%')) return text;
  return text.replace(PERCENT, (_match, hex: string) => {
    const code = Number.parseInt(hex, 16);
    return isUnreserved(code) ? String.fromCharCode(code) : `%${hex.toUpperCase()}`;
  });
}

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 §2.3). */
function isUnreserved(code: number): boolean {
  return (
    (code >= 0x41 && code <= 0x5a) ||
    (code >= 0x61 && code <= 0x7a) ||
    (code >= 0x30 && code <= 0x39) ||
    code === 0x2d ||
    code === 0x2e ||
    code === 0x5f ||
    code === 0x7e
  );
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, ' '));
  } catch {
    return text;
  }
}

/** Splits a request-target into its canonical path and canonical URL (path + query). */
export function canonicalUrl(
  rawUrl: string,
  keepParam: QueryFilter,
): { path: string; url: string } {
  const hash = rawUrl.indexOf('#');
  const target = hash === -1 ? rawUrl : rawUrl.slice(0, hash);
  const mark = target.indexOf('?');
  const path = normalizePercent(mark === -1 ? target : target.slice(0, mark));
  if (mark === -1) return { path, url: path };

  const params: { name: string; part: string }[] = [];
  for (const part of target.slice(mark + 1).split('&')) {
    if (part === '') continue;
    const normalized = normalizePercent(part);
    const eq = normalized.indexOf('=');
    const name = eq === -1 ? normalized : normalized.slice(0, eq);
    if (keepParam(safeDecode(name))) params.push({ name, part: normalized });
  }
  if (params.length === 0) return { path, url: path };
  // Array.prototype.sort is stable: repeated names keep the order the client sent.
  params.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { path, url: `${path}?${params.map((p) => p.part).join('&')}` };
}

/**
 * Builds the query filter from the `ignoreQuery` and `allowQuery` options. Patterns are
 * parameter names, where a trailing `*` matches any suffix (`utm_*`).
 */
export function queryFilter(
  ignore: readonly string[],
  allow: readonly string[] | undefined,
): QueryFilter {
  const ignored = toMatcher(ignore);
  if (allow === undefined) return (name) => !ignored(name);
  const allowed = toMatcher(allow);
  return (name) => allowed(name) && !ignored(name);
}

function toMatcher(patterns: readonly string[]): (name: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.endsWith('*')));
  const prefixes = patterns.filter((p) => p.endsWith('*')).map((p) => p.slice(0, -1));
  return (name) => exact.has(name) || prefixes.some((prefix) => name.startsWith(prefix));
}

/**
 * The path tags an entry carries implicitly, so `revalidatePath` needs no scan:
 * `/blog/a` carries its own page tag and a layout tag for `/`, `/blog` and `/blog/a`.
 * A trailing slash is not significant here (`/blog/` is the page `/blog`), as in Express's
 * default routing.
 */
export function pageTag(path: string): string {
  return `page:${trimSlash(path)}`;
}

export function layoutTag(path: string): string {
  return `layout:${trimSlash(path)}`;
}

export function implicitTags(path: string): string[] {
  const trimmed = trimSlash(path);
  const tags = [pageTag(trimmed), layoutTag('/')];
  let end = trimmed.indexOf('/', 1);
  while (end !== -1) {
    tags.push(layoutTag(trimmed.slice(0, end)));
    end = trimmed.indexOf('/', end + 1);
  }
  if (trimmed !== '/') tags.push(layoutTag(trimmed));
  return tags;
}

/** User tags live in their own namespace so that no user tag can shadow a path tag. */
export function userTag(tag: string): string {
  return `tag:${tag}`;
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}
