/**
 * Picks the stored variant for a request's Accept-Encoding (RFC 9110 §12.5.3). Only three
 * answers exist (br, gzip, identity), so results are memoised per header value: browsers
 * send a handful of distinct strings, and a hit then costs one Map lookup.
 */
export type Coding = 'br' | 'gzip' | 'identity';

const memo = new Map<string, Coding>();
const MEMO_LIMIT = 512;

export function preferredCoding(acceptEncoding: string | undefined): Coding {
  if (acceptEncoding === undefined || acceptEncoding === '') return 'identity';
  let coding = memo.get(acceptEncoding);
  if (coding === undefined) {
    coding = negotiate(acceptEncoding);
    if (memo.size >= MEMO_LIMIT) memo.clear(); // bounded against hostile header variety
    memo.set(acceptEncoding, coding);
  }
  return coding;
}

function negotiate(header: string): Coding {
  const q: Record<string, number> = {};
  for (const part of header.toLowerCase().split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName.trim();
    if (name === '') continue;
    let quality = 1;
    for (const param of params) {
      const [key, value] = param.split('=');
      if (key.trim() === 'q') quality = Number.parseFloat(value) || 0;
    }
    q[name] = quality;
  }
  const star = q['*'];
  const br = q.br ?? star ?? 0;
  const gzip = q.gzip ?? q['x-gzip'] ?? star ?? 0;
  if (br > 0 && br >= gzip) return 'br';
  if (gzip > 0) return 'gzip';
  return 'identity';
}
