import http, { type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express, NextFunction, Request, Response } from 'express';
import { isRegeneration } from '../../lib';
import { deferred } from './deferred';

/**
 * Listens on a free loopback port (an Express app or any request listener, e.g.
 * `cache.handler(app)`); `close()` shuts the server and its keep-alive connections.
 */
export async function listen(app: Express | RequestListener) {
  const server = http.createServer(app as RequestListener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url: (path: string) => `http://127.0.0.1:${port}${path}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
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

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
