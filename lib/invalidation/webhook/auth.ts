/**
 * The webhook's credentials: the shared secret (a Bearer token, RFC 6750, `?secret=` or a body
 * field), or an HMAC signature of the raw body.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { RevalidateRouterOptions } from './router';

export function bearerOf(req: IncomingMessage): string | undefined {
  return /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
}

/** Hashing first makes the comparison constant-time whatever the lengths (timingSafeEqual needs equal lengths). */
export function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

export function signatureMatches(
  req: IncomingMessage,
  raw: Buffer,
  signature: NonNullable<RevalidateRouterOptions['signature']>,
  routerSecret: string,
): boolean {
  const header = req.headers[signature.header.toLowerCase()];
  if (typeof header !== 'string') return false;
  const prefix = signature.prefix ?? '';
  if (!header.startsWith(prefix)) return false;
  const expected = createHmac(signature.algorithm ?? 'sha256', signature.secret ?? routerSecret)
    .update(raw)
    .digest(signature.encoding ?? 'hex');
  return timingSafeEqual(digest(header.slice(prefix.length)), digest(expected));
}
