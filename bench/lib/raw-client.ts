/**
 * A raw HTTP/1.1 client for the load CPU: keep-alive sockets that send one GET at a time and
 * read the reply by Content-Length or chunked framing. No client library sits between the
 * socket and the timing, so what is measured is the server.
 */
import net from 'node:net';

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** From the write to the last byte. */
  ms: number;
}

export interface Connection {
  socket: net.Socket;
  /** One GET on this keep-alive socket; replies are read with Content-Length or chunked. */
  request(path: string): Promise<RawReply>;
}

/** One keep-alive connection to `host:port`, with Nagle off. */
export function connect(host: string, port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({ socket, request: (path) => rawGet(socket, host, path) });
    });
  });
}

/**
 * `count` keep-alive connections to `origin`, connected in batches of 250 (the listen backlog
 * is 511), each used once for `/ping` so that nothing measured later pays for its set-up.
 */
export async function connectMany(origin: string, count: number): Promise<Connection[]> {
  const { hostname, port } = new URL(origin);
  const sockets: Connection[] = [];
  try {
    for (let i = 0; i < count; i += 250) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(250, count - i) }, () => connect(hostname, Number(port))),
      );
      sockets.push(...batch);
      await Promise.all(batch.map((c) => c.request('/ping')));
    }
    return sockets;
  } catch (error) {
    for (const c of sockets) c.socket.destroy();
    throw error;
  }
}

function rawGet(socket: net.Socket, host: string, path: string): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    let buffered: Buffer = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string>; bodyAt: number } | undefined;
    const done = (reply?: RawReply, error?: Error) => {
      socket.off('data', onData);
      socket.off('error', onError);
      if (error) reject(error);
      else if (reply) resolve(reply);
    };
    const onError = (error: Error) => done(undefined, error);
    const onData = (chunk: Buffer) => {
      buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
      if (head === undefined) {
        const end = buffered.indexOf('\r\n\r\n');
        if (end === -1) return;
        const [statusLine, ...lines] = buffered.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        head = { status: Number(statusLine.split(' ')[1]), headers, bodyAt: end + 4 };
      }
      const body = buffered.subarray(head.bodyAt);
      const length = head.headers['content-length'];
      let complete: Buffer | undefined;
      if (length !== undefined) {
        if (body.length >= Number(length)) complete = body.subarray(0, Number(length));
      } else if (body.subarray(-5).toString() === '0\r\n\r\n') {
        complete = dechunk(body);
      }
      if (complete !== undefined) {
        done({
          status: head.status,
          headers: head.headers,
          body: complete,
          ms: performance.now() - start,
        });
      }
    };
    socket.on('data', onData);
    socket.on('error', onError);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/html\r\n\r\n`);
  });
}

function dechunk(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', at);
    const size = Number.parseInt(body.subarray(at, lineEnd).toString(), 16);
    if (!(size > 0)) return Buffer.concat(parts);
    parts.push(body.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}
