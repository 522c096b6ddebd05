import type { IncomingHttpHeaders } from 'node:http';

/**
 * RFC 9110 §13.1: If-None-Match (weak comparison) wins over If-Modified-Since, which is
 * compared with the page's own Last-Modified only. Takes the request's headers, so that any
 * answer (a replay, a relayed render) asks the same question of the same input.
 */
export function notModified(
  requestHeaders: IncomingHttpHeaders,
  etag: string,
  lastModified: number | undefined,
): boolean {
  const ifNoneMatch = requestHeaders['if-none-match'];
  if (ifNoneMatch !== undefined) return etagMatches(ifNoneMatch, etag);
  const ifModifiedSince = requestHeaders['if-modified-since'];
  if (ifModifiedSince === undefined || lastModified === undefined) return false;
  const since = Date.parse(ifModifiedSince);
  return !Number.isNaN(since) && lastModified <= since;
}

function etagMatches(header: string, etag: string): boolean {
  if (header.trim() === '*') return true;
  const opaque = stripWeak(etag);
  return header.split(',').some((candidate) => stripWeak(candidate.trim()) === opaque);
}

function stripWeak(tag: string): string {
  return tag.startsWith('W/') ? tag.slice(2) : tag;
}
