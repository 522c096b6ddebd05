/** Pages and cache entries for scenarios that fill a store without rendering through HTTP. */
import type { CacheEntry } from '../../lib';

/** A deterministic HTML page of exactly `bytes` bytes (ASCII). */
export function htmlPage(bytes: number, title = 'Benchmark page'): string {
  const head = `<!doctype html><html><head><title>${title}</title></head><body><main>`;
  const tail = '</main></body></html>';
  const paragraph =
    '<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.</p>\n';
  let middle = '';
  while (head.length + middle.length + tail.length < bytes) middle += paragraph;
  return head + middle.slice(0, bytes - head.length - tail.length) + tail;
}

/** A stored page as the middleware would have captured it from a `text/html` 200. */
export function cacheEntry(
  url: string,
  body: Buffer,
  options: { tags?: string[]; generatedAt?: number; revalidate?: number | false } = {},
): CacheEntry {
  return {
    status: 200,
    headers: { 'content-type': 'text/html; charset=utf-8' },
    body,
    etag: `"${Buffer.from(url).toString('base64url')}"`,
    generatedAt: options.generatedAt ?? Date.now(),
    revalidate: options.revalidate ?? false,
    maxStale: false,
    staleIfError: false,
    tags: options.tags ?? [],
    url,
    requestHeaders: { accept: 'text/html' },
  };
}
