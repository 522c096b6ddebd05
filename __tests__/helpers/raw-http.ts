import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  /** The bytes exactly as they came over the wire: never decompressed. */
  body: Buffer;
}

/**
 * One request against `app` on a throwaway server, reading the raw bytes (supertest decodes
 * gzip/br before anyone sees them). No header is sent that the caller did not give, not even
 * `Accept-Encoding`.
 */
export async function rawRequest(
  app: RequestListener,
  path: string,
  headers: Record<string, string> = {},
  method = 'GET',
): Promise<RawResponse> {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<RawResponse>((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port, path, method, headers, agent: false },
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
      req.on('error', reject);
      req.end();
    });
  } finally {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Decodes a raw body once, by its own Content-Encoding. */
export function decodeBody(response: RawResponse): Buffer {
  const coding = String(response.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (coding === 'br') return zlib.brotliDecompressSync(response.body);
  if (coding === 'gzip' || coding === 'x-gzip') return zlib.gunzipSync(response.body);
  if (coding === 'deflate') return zlib.inflateSync(response.body);
  if (coding === 'identity') return response.body;
  throw new Error(`unexpected content-encoding ${coding}`);
}
