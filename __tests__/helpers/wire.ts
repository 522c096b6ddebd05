import http, { type IncomingHttpHeaders, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real server on a loopback port, and a client that sends exactly what it is told: the path
 * verbatim (`//blog/a`, `/blog/a/..%2f`, `;jsessionid=`), any `Host`, any header size. It never
 * throws: a connection the server cut (a destroyed response, a 431 followed by a close) or a
 * request that got no answer in time comes back as `{ status: 0, error }`, with whatever body
 * arrived before. One port for the whole test, so the Host a render sees by default
 * (`127.0.0.1:<port>`) is the same for every request.
 */
export interface WireAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** Set when the exchange did not complete: the connection was cut, or no answer in time. */
  error?: string;
}

export interface WireRequest {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** The client gives up (and closes its connection) after this long. */
  timeoutMs?: number;
  /** Or when this is aborted: a visitor who leaves. */
  signal?: AbortSignal;
}

export async function serve(app: RequestListener) {
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  function send(options: WireRequest): Promise<WireAnswer> {
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
    send,
    get: (path: string, headers?: Record<string, string>) => send({ path, headers }),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
