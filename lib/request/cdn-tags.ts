import type { ServerResponse } from 'node:http';
import { preview, tagProblem } from '../invalidation/targets';
import type { WarningCode } from '../observability/warnings';
import { mergeTags } from '../render/entry';
import { implicitTags } from './cache-key';

/** The tag header sent, by its lower-case name (`cdnTags`). */
export type CdnTagHeader = 'cache-tag' | 'surrogate-key' | 'xkey';

/**
 * A page's tags as a CDN in front receives them, in `Cache-Tag` (comma-separated),
 * `Surrogate-Key` or `xkey` (space-separated), after its path keys (`headerTags`). Inside the cache a tag stays exactly the string the app
 * gave (`revalidateTag` matches it as it is); only the header carries an encoded form, because
 * a header value is not a place for any string (RFC 9110 §5.5: no CR, LF or NUL; anything
 * outside visible ASCII is obs-text, which CDNs do not take as tag characters) and because a
 * tag holding the list's separator would arrive as two tags. One set of rules for the MISS
 * (`setCdnTagHeader`) and the replay (`planCdnTags`, once per entry): a page's header is the
 * same whichever way it is answered.
 */

/**
 * Longest tag sent, in bytes once encoded: Fastly ignores a surrogate key over 1024 bytes
 * (and every key after it in the header), so a longer one would cost the tags that follow.
 */
export const MAX_CDN_TAG_BYTES = 1024;

/**
 * Longest tag header value sent, in bytes. Cloudflare and Fastly take 16 KB of tags, but 16 KB
 * is also Node's default limit for a whole response head (`--max-http-header-size`): a Node
 * client or proxy in front refuses a response whose tags alone fill it. Half of it leaves room
 * for every other header.
 */
export const MAX_CDN_TAG_HEADER_BYTES = 8 * 1024;

/** Characters a tag keeps as they are: visible ASCII, except the separators' `,`, `%` and `"`. */
const NEEDS_ENCODING = /[^\x21-\x7e]|[,%"]/u;
const ENCODED = /[^\x21-\x7e]|[,%"]/gu;
/** A UTF-16 surrogate without its other half: it has no UTF-8 form to send. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * A tag as the CDN header carries it, or `undefined` when it cannot be sent. Visible ASCII
 * goes as it is; every other character, and `,` `%` `"`, is percent-encoded as UTF-8, as
 * `encodeURIComponent` does (`post-café` → `post-caf%C3%A9`, `a b` → `a%20b`), so the value is
 * visible ASCII without separators, which every CDN accepts, and two tags never become one.
 * Not sent: a tag `revalidateTag` would refuse (control characters, blank, over 2048
 * characters: no purge could ever name it), one with a lone surrogate (no UTF-8 form), and
 * one over `MAX_CDN_TAG_BYTES` once encoded.
 */
export function cdnTag(tag: string): string | undefined {
  if (tagProblem(tag) !== undefined) return undefined;
  if (!NEEDS_ENCODING.test(tag)) return tag.length <= MAX_CDN_TAG_BYTES ? tag : undefined;
  if (LONE_SURROGATE.test(tag)) return undefined;
  const encoded = tag.replace(ENCODED, encodeURIComponent);
  return encoded.length <= MAX_CDN_TAG_BYTES ? encoded : undefined;
}

/** Which of a page's tags go into its CDN header, decided once per entry. */
export interface CdnTagPlan {
  /** The encoded tags sent, in the order the page gave them. */
  sent: string[];
  /** Tags `cdnTag` cannot send. */
  unsendable: string[];
  /** Tags left out because the header was full (`MAX_CDN_TAG_HEADER_BYTES`). */
  overflow: string[];
}

/**
 * Encodes the tags and fills the header up to its cap, in order; a tag that does not fit is
 * left out and the next ones are still tried. Every tag left out still works for
 * `revalidateTag`: only the CDN does not know it.
 */
export function planCdnTags(tags: readonly string[]): CdnTagPlan {
  const plan: CdnTagPlan = { sent: [], unsendable: [], overflow: [] };
  let size = 0;
  for (const tag of tags) {
    const encoded = cdnTag(tag);
    if (encoded === undefined) {
      plan.unsendable.push(tag);
      continue;
    }
    // Each tag after the first costs its separator too (one byte in either header).
    const cost = encoded.length + (plan.sent.length > 0 ? 1 : 0);
    if (size + cost > MAX_CDN_TAG_HEADER_BYTES) {
      plan.overflow.push(tag);
      continue;
    }
    plan.sent.push(encoded);
    size += cost;
  }
  return plan;
}

/** The header value for a plan, or `undefined` when no tag is sent. */
export function cdnTagValue(plan: CdnTagPlan, header: CdnTagHeader): string | undefined {
  if (plan.sent.length === 0) return undefined;
  return plan.sent.join(header === 'cache-tag' ? ',' : ' ');
}

/**
 * The tags of a page's CDN header, whichever header carries them: the page's path keys first —
 * its page tag and its layout tags, as the cache's own path clocks name them (`page:/blog/a`,
 * `layout:/`, `layout:/blog`, `layout:/blog/a`: every spelling and query variant of a page
 * shares them) — then its own tags. So a purge by path (`express-isr/purge`) reaches at the
 * CDN what `revalidatePath` reaches in the cache, a layout included; first, so that a page
 * with more tags than the header holds still carries them.
 */
export function headerTags(url: string, tags: readonly string[]): string[] {
  const mark = url.indexOf('?');
  return [...implicitTags(mark === -1 ? url : url.slice(0, mark)), ...tags];
}

/** What prints the coded warnings (the engine's `warn`). */
export interface Warner {
  warn(code: WarningCode, message: string): void;
}

/** The coded warnings for the tags a plan leaves out of `url`'s header (README: Warnings). */
export function warnCdnTags(plan: CdnTagPlan, url: string, warner: Warner): void {
  if (plan.unsendable.length > 0) {
    warner.warn(
      'ISR_TAG_NOT_SENT',
      `${url} has ${count(plan.unsendable.length, 'tag')} left out of the CDN tag header, e.g. ${preview(plan.unsendable[0])}: a tag with a control character, or over ${MAX_CDN_TAG_BYTES} bytes once percent-encoded, cannot be sent to a CDN. The page is cached as usual.`,
    );
  }
  if (plan.overflow.length > 0) {
    warner.warn(
      'ISR_TAGS_TRUNCATED',
      `${url} has more tags than fit in ${MAX_CDN_TAG_HEADER_BYTES} bytes of CDN tag header: ${count(plan.overflow.length, 'tag')} left out, e.g. ${preview(plan.overflow[0])}. They still work for revalidateTag, but a CDN purge by them misses this page.`,
    );
  }
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}

/**
 * Sets the CDN tag header of a MISS as its replays will send it: the page's path keys, then
 * the tags of `res.isr` and of the app's own `Cache-Tag` / `Surrogate-Key`, encoded and capped.
 * Replaces the app's own value of that header (its tags are in the list). Never throws on a
 * tag: a 500 for a cache hint would be stored and replayed to every visitor.
 */
export function setCdnTagHeader(
  res: ServerResponse,
  isrTags: readonly string[],
  header: CdnTagHeader,
  url: string,
  warner: Warner,
): void {
  const tags = headerTags(url, mergeTags(isrTags, res.getHeaders()));
  const plan = planCdnTags(tags);
  warnCdnTags(plan, url, warner);
  const value = cdnTagValue(plan, header);
  if (value === undefined) res.removeHeader(header);
  else res.setHeader(header, value);
}
