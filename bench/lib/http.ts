/** One plain HTTP GET on a fresh connection (no keep-alive socket outlives it). */
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function get(url: string, timeoutMs = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

/**
 * GETs `url` until every expected header has its value (a MISS first stores the page, so
 * the next request is the HIT): throws with what was seen if it never does.
 */
export async function until(
  url: string,
  expected: Record<string, string>,
  attempts = 40,
): Promise<Reply> {
  let reply: Reply | undefined;
  for (let i = 0; i < attempts; i += 1) {
    reply = await get(url);
    if (matches(reply, expected)) return reply;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`GET ${url}: expected ${JSON.stringify(expected)}, got ${describe(reply)}`);
}

export function matches(reply: Reply, expected: Record<string, string>): boolean {
  return (
    reply.status === 200 &&
    Object.entries(expected).every(([name, value]) => reply.headers[name] === value)
  );
}

export function describe(reply: Reply | undefined): string {
  if (reply === undefined) return 'nothing';
  return `${reply.status} x-isr-cache=${reply.headers['x-isr-cache'] ?? '(none)'}`;
}
