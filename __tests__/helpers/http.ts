/**
 * Talking HTTP to an app in this process. Use supertest (`request(app)`) for a plain
 * exchange; `listen` when the test needs the server itself: a port, a path sent verbatim, a
 * socket it can cut off, an answer that never comes. `rawRequest` reads the bytes as they came
 * over the wire (supertest decodes gzip/br first).
 */
import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import type { Express, NextFunction, Request, Response } from 'express';
import { isRegeneration } from '../../lib';
import { deferred } from './deferred';

/**
 * An answer as the client saw it. It never throws: a connection the server cut (a destroyed
 * response, a 431 followed by a close) or a request that got no answer in time comes back as
 * `{ status: 0, error }`, with whatever body arrived before.
 */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Set when the exchange did not complete: the connection was cut, or no answer in time. */
  error?: string;
}

export interface Send {
  method?: string;
  /** Sent verbatim: `//blog/a`, `/blog/a/..%2f`, `;jsessionid=`. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The client gives up (and closes its connection) after this long. */
  timeoutMs?: number;
  /** Or when this is aborted: a visitor who leaves. */
  signal?: AbortSignal;
}

/**
 * Listens on a free loopback port (an Express app or any request listener, e.g.
 * `cache.handler(app)`). One port for the whole test, so the Host a render sees by default
 * (`127.0.0.1:<port>`) is the same for every request. Each `send`/`get` is one connection
 * of its own (`agent: false`); `close()` shuts the server and its keep-alive connections.
 */
export async function listen(app: Express | RequestListener) {
  const server = http.createServer(app as RequestListener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  function send(options: Send): Promise<Answer> {
    const { method = 'GET', path, headers = {}, body, timeoutMs = 5000, signal } = options;
    return new Promise((resolve) => {
      let status = 0;
      let responseHeaders: IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let settled = false;
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve({
          status: error === undefined ? status : 0,
          headers: responseHeaders,
          body: Buffer.concat(chunks).toString('utf8'),
          error,
        });
      };
      const req = http.request(
        { host: '127.0.0.1', port, path, method, headers, agent: false, signal },
        (res) => {
          status = res.statusCode ?? 0;
          responseHeaders = res.headers;
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => finish(res.complete ? undefined : 'response cut off'));
          res.on('aborted', () => finish('response aborted'));
          res.on('error', (error) => finish(error.message));
          res.on('close', () => finish(res.complete ? undefined : 'response cut off'));
        },
      );
      const timer = setTimeout(() => {
        req.destroy();
        finish(`no answer within ${timeoutMs} ms`);
      }, timeoutMs);
      req.on('error', (error) => finish(error.message));
      req.end(body);
    });
  }

  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    send,
    get: (path: string, headers?: Record<string, string>, method = 'GET') =>
      send({ path, headers, method }),
    /** Sends a GET on a raw socket and returns the socket, to cut it off at will. */
    rawGet(path: string) {
      const socket = net.connect(port, '127.0.0.1');
      socket.on('error', () => {});
      socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
      return socket;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

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

/**
 * Counts the visitors' requests that reached the app (mount it before `isr()`); `allArrived`
 * resolves once `count` did. A route that waits for it (plus a few ms) is still rendering
 * while every other request for the same cold page is waiting for that render.
 */
export function arrivals(count: number) {
  const allArrived = deferred();
  let arrived = 0;
  return {
    allArrived: allArrived.promise,
    middleware(req: Request, _res: Response, next: NextFunction) {
      if (!isRegeneration(req)) {
        arrived += 1;
        if (arrived === count) allArrived.resolve();
      }
      next();
    },
  };
}
