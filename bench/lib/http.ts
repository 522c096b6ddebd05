/** One plain HTTP GET on a fresh connection (no keep-alive socket outlives it). */
import http from 'node:http';

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** What a check expects of a reply: a status (200 unless said) and header values. */
export interface Expected {
  status?: number;
  headers?: Record<string, string>;
}

export function get(
  url: string,
  requestHeaders: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const request = http.get(
      url,
      { agent: false, timeout: timeoutMs, headers: requestHeaders },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    request.on('timeout', () => request.destroy(new Error(`GET ${url} timed out`)));
    request.on('error', reject);
  });
}

/**
 * GETs `url` until the reply is as expected (a MISS first stores the page, so the next
 * request is the HIT): throws with what was seen if it never is.
 */
export async function until(
  url: string,
  expected: Expected,
  requestHeaders: Record<string, string> = {},
  attempts = 40,
): Promise<Reply> {
  let reply: Reply | undefined;
  for (let i = 0; i < attempts; i += 1) {
    reply = await get(url, requestHeaders);
    if (matches(reply, expected)) return reply;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`GET ${url}: expected ${JSON.stringify(expected)}, got ${describe(reply)}`);
}

export function matches(reply: Reply, expected: Expected): boolean {
  return (
    reply.status === (expected.status ?? 200) &&
    Object.entries(expected.headers ?? {}).every(([name, value]) => reply.headers[name] === value)
  );
}

export function describe(reply: Reply | undefined): string {
  if (reply === undefined) return 'nothing';
  return `${reply.status} x-isr-cache=${reply.headers['x-isr-cache'] ?? '(none)'}`;
}
