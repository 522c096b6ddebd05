import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/**
 * Marks a request the cache made itself. A Symbol on the request object, not a header:
 * nothing a client sends over the wire can make its request look like a regeneration.
 */
export const REGENERATION = Symbol('express-isr.regeneration');

/** True when `req` is a background regeneration (e.g. to skip rate limiting or logging). */
export function isRegeneration(req: IncomingMessage): boolean {
  return (req as unknown as Record<symbol, unknown>)[REGENERATION] === true;
}

/**
 * A socket that goes nowhere: what the response writes is discarded (the cache reads the
 * response through its capture, not from the wire) and nothing is ever read from it.
 */
class NullSocket extends Duplex {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 0;
  readonly remoteFamily = 'IPv4';
  readonly localAddress = '127.0.0.1';
  readonly localPort = 0;

  constructor(readonly encrypted: boolean) {
    super();
    // Node's HTTP server passes a socket's 'drain' on to the response being written; with no
    // server here, this does, or a route that waits for 'drain' (a pipe, `res.sendFile` of a
    // page over 16 KB) would wait for ever.
    this.on('drain', () => {
      const response = (this as unknown as { _httpMessage?: ServerResponse })._httpMessage;
      if (response !== undefined && !response.writableFinished) response.emit('drain');
    });
  }

  override _read(): void {}
  override _write(_chunk: unknown, _encoding: BufferEncoding, callback: () => void): void {
    callback();
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
}

/**
 * Builds a real `http.IncomingMessage` / `http.ServerResponse` pair for an anonymous GET,
 * to be dispatched through the app like any request (`app(req, res, done)`).
 *
 * Why this mechanism: it runs the app's own middleware and routes exactly as a visitor's
 * request would (Express 4 and 5 alike, `res.render`, `res.send`, streaming, `res.sendFile`),
 * and it touches no shared state. Injection libraries such as light-my-request patch the
 * request/response prototypes that Express shares, which breaks other apps in the process;
 * an HTTP round trip to ourselves would need a known port and could be seen (and forged) on
 * the wire. These objects are plain instances of Node's own classes on a private socket.
 */
export function syntheticExchange(
  url: string,
  headers: Record<string, string>,
  /** Over TLS, like the request it renders for (`req.secure`, `req.protocol`). */
  encrypted = false,
): {
  req: IncomingMessage;
  res: ServerResponse;
  cookiesRead: () => boolean;
  namesRead: () => ReadonlySet<string>;
} {
  const socket = new NullSocket(encrypted) as unknown as Socket;
  const req = new IncomingMessage(socket);
  req.method = 'GET';
  req.url = url;
  req.httpVersionMajor = 1;
  req.httpVersionMinor = 1;
  req.httpVersion = '1.1';
  const watched = watchReads({ ...headers }, Object.entries(headers).flat());
  req.headers = watched.headers;
  Object.defineProperty(req, 'rawHeaders', {
    configurable: true,
    enumerable: true,
    get: watched.rawHeaders,
  });
  req.complete = true;
  req.push(null); // a GET has no body
  (req as unknown as Record<symbol, unknown>)[REGENERATION] = true;
  const res = new ServerResponse(req);
  res.assignSocket(socket);
  return { req, res, cookiesRead: watched.cookiesRead, namesRead: watched.namesRead };
}

/** What a render of the cache's own looked at in its request's headers. */
interface WatchedHeaders {
  headers: Record<string, string>;
  rawHeaders: () => string[];
  /** It looked for the Cookie header, or listed them all. */
  cookiesRead: () => boolean;
  /** The headers it read by name (lower case). */
  namesRead: () => ReadonlySet<string>;
}

/**
 * The stored render never carries a Cookie, but whether it *looked* for one tells whether the
 * page may depend on cookies: a page whose render never read the Cookie header is the same for
 * every visitor, cookies or not, while one that did (the route, `cookie-parser`,
 * `express-session`…) is never replayed to a request that carries cookies (README, "Sessions
 * and logged-in users"). Listing or copying all the headers (`Object.entries(req.headers)`,
 * as framework adapters do to build a Fetch `Request`) counts as reading it: the copy could
 * be read later, where it cannot be watched. So does reading `rawHeaders`.
 *
 * The headers read by name are noted too: a page that reads a forwarded header it does not
 * `Vary` on (`Accept-Language`, say) is not stored (see page-render.ts).
 */
function watchReads(headers: Record<string, string>, raw: string[]): WatchedHeaders {
  let cookies = false;
  const names = new Set<string>();
  /**
   * Headers being copied whole (`{ ...req.headers }`, `Object.entries`, `JSON.stringify`):
   * after listing the names, each is looked up (its descriptor), then read, in the same order.
   * Those reads say nothing of what the page uses, so a read of the next name in that queue is
   * not noted; any other read ends the copy (it is the page's own), and so does the next turn.
   */
  let copying: string[] = [];
  const noted = (name: string | symbol, looked: boolean) => {
    if (typeof name !== 'string') return;
    if (name === 'cookie') cookies = true;
    if (looked) return; // a descriptor: part of a listing, or `hasOwnProperty`
    if (copying[0] === name) {
      copying.shift();
      return;
    }
    copying = [];
    names.add(name);
  };
  const proxy = new Proxy(headers, {
    get(target, name, receiver) {
      noted(name, false);
      return Reflect.get(target, name, receiver);
    },
    has(target, name) {
      noted(name, false);
      return Reflect.has(target, name);
    },
    getOwnPropertyDescriptor(target, name) {
      noted(name, true);
      return Reflect.getOwnPropertyDescriptor(target, name);
    },
    ownKeys(target) {
      cookies = true;
      const keys = Reflect.ownKeys(target);
      copying = keys.filter((key): key is string => typeof key === 'string');
      queueMicrotask(() => {
        copying = [];
      });
      return keys;
    },
  });
  return {
    headers: proxy,
    rawHeaders: () => {
      cookies = true;
      return raw;
    },
    cookiesRead: () => cookies,
    namesRead: () => names,
  };
}
