/**
 * The servers the `hits/*` scenarios compare: a bare `node:http` listener answering a
 * precomputed Buffer, a plain Express 5 route, and the same route behind `isr()` (as
 * middleware, or with `cache.handler(app)` in front).
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import express from 'express';
import { type IsrOptions, isr } from '../../lib';
import type { Served } from './scenario';

export interface PageOptions {
  /** Sent as the page's ETag (by the route, and by the bare server); else Express's own. */
  etag?: string;
}

/**
 * What a static server does at best: a precomputed Buffer and header set, a 304 for a
 * matching If-None-Match, no body for HEAD.
 */
export function bareListener(page: string, options: PageOptions = {}): RequestListener {
  const body = Buffer.from(page);
  const headers: Record<string, string | number> = {
    'content-type': 'text/html; charset=utf-8',
    'content-length': body.length,
  };
  if (options.etag !== undefined) headers.etag = options.etag;
  return (req: IncomingMessage, res: ServerResponse) => {
    if (options.etag !== undefined && req.headers['if-none-match'] === options.etag) {
      res.writeHead(304, { etag: options.etag });
      res.end();
      return;
    }
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}

/** A plain Express 5 route sending the page on every request: no cache. */
export function plainExpress(page: string, options: PageOptions = {}): Served {
  let renders = 0;
  const app = express();
  app.get('/page', (_req, res) => {
    renders += 1;
    if (options.etag !== undefined) res.set('ETag', options.etag);
    res.type('html').send(page);
  });
  return { listener: app, renders: () => renders };
}

/**
 * The same route behind `app.use(isr())` (`fastPath: false`) or behind
 * `http.createServer(cache.handler(app))` with the middleware still mounted (`fastPath: true`).
 * The page stays fresh for an hour: every measured request is a HIT.
 */
export function cachedExpress(
  page: string,
  options: PageOptions & { fastPath?: boolean; isr?: IsrOptions } = {},
): Served {
  let renders = 0;
  const cache = isr(options.isr);
  const app = express();
  app.use(cache);
  app.get('/page', (_req, res) => {
    renders += 1;
    res.isr({ revalidate: 3600 });
    if (options.etag !== undefined) res.set('ETag', options.etag);
    res.type('html').send(page);
  });
  return {
    listener: options.fastPath ? cache.handler(app) : app,
    renders: () => renders,
    close: () => cache.close(),
  };
}
