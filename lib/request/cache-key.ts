/**
 * The cache key: the request's path plus its query string, normalised so that two spellings
 * of one URL share an entry and two different URLs never do (RFC 3986 §6.2.2).
 *
 * - Percent-encoded unreserved characters are decoded (`%62` ≡ `b`), every other
 *   percent-encoding is upper-cased (`%2f` ≡ `%2F`). Reserved characters such as `%2F` stay
 *   encoded: `/a%2Fb` is not `/a/b`.
 * - An absolute-form request-target (`GET http://host/blog/a`, RFC 9112 §3.2.2) is keyed by
 *   its path and query alone: the scheme and authority never become part of a key.
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

/** `scheme://authority` at the start of an absolute-form request-target (RFC 3986 §3). */
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** Splits a request-target into its canonical path and canonical URL (path + query). */
export function canonicalUrl(
  rawUrl: string,
  keepParam: QueryFilter,
): { path: string; url: string } {
  const hash = rawUrl.indexOf('#');
  let target = hash === -1 ? rawUrl : rawUrl.slice(0, hash);
  if (!target.startsWith('/')) {
    // Express routes `GET http://host/blog/a` as /blog/a: it is keyed (and tagged) as /blog/a
    // too, or it would be a page of its own that no revalidation of /blog/a reaches.
    const origin = ABSOLUTE_FORM.exec(target);
    if (origin !== null) {
      const rest = target.slice(origin[0].length);
      target = rest.startsWith('/') ? rest : `/${rest}`;
    }
  }
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

/** Characters a path may hold as they are: pchar and "/" (RFC 3986 §3.3), and "%". */
const PATH_SAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/gu;

/**
 * A path as a person or a CMS writes it (`/blog/café`, `/a b`), percent-encoded the way a
 * browser sends it (UTF-8, RFC 3986 §2.5), so that it names the page its visitors' URLs name.
 * Percent-encodings already there are kept (`/blog/caf%C3%A9` is the same path).
 */
export function encodePath(path: string): string {
  return path.replace(PATH_SAFE, (char) =>
    [...Buffer.from(char, 'utf8')].map((byte) => `%${hex(byte)}`).join(''),
  );
}

function hex(byte: number): string {
  return byte.toString(16).toUpperCase().padStart(2, '0');
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
 *
 * Keys keep each spelling apart, but these tags (the path clocks) fold every spelling under
 * which Express's default routing serves one page into one: case-insensitive (`/BLOG/a`),
 * trailing slash not significant (`/blog/a/`), and every character outside RFC 3986's pchar
 * percent-encoded. So one invalidation of `/blog/a` reaches every copy the cache holds. On an
 * app with case-sensitive or strict routing, two pages that fold alike are invalidated
 * together: they are re-rendered, never served wrong.
 */
export function pageTag(path: string): string {
  return `page:${foldPath(path)}`;
}

export function layoutTag(path: string): string {
  return `layout:${foldPath(path)}`;
}

export function implicitTags(path: string): string[] {
  const trimmed = foldPath(path);
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

/**
 * A canonical path (see `canonicalUrl`) folded for the path clocks. A request-target's bytes
 * outside ASCII reach Node as one character each (latin1), so such a character stands for
 * one byte; `encodePath` has already encoded a path given to `revalidatePath` as UTF-8.
 */
function foldPath(path: string): string {
  const encoded = path.replace(PATH_SAFE, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `%${hex(code)}` : encodePath(char);
  });
  const folded = encoded.toLowerCase();
  return folded.length > 1 && folded.endsWith('/') ? folded.slice(0, -1) : folded;
}
