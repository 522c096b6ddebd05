// Any Connect-style app, not only Express: a plain `(req, res, next)` chain on node:http.
// Without Express there is no `req.app`, so regeneration needs the `app` option.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { isr } from '../../lib';
import { fakeClock } from '../helpers/time';

type Handler = (
  req: http.IncomingMessage,
  res: http.ServerResponse,
  next: (err?: unknown) => void,
) => void;

/** A minimal Connect: runs the handlers in order; 404 when none answered. */
function chain(...handlers: Handler[]): Handler {
  return (req, res, done) => {
    let i = 0;
    const next = (err?: unknown) => {
      const handler = handlers[i++];
      if (err !== undefined || handler === undefined) {
        done(err);
        return;
      }
      handler(req, res, next);
    };
    next();
  };
}

test('a Connect-style app: MISS, HIT, STALE, and a regeneration through the `app` option', async () => {
  const clock = fakeClock();
  let version = 0;
  const route: Handler = (req, res, next) => {
    if (req.url !== '/page') return next();
    version += 1;
    res.setHeader('content-type', 'text/html');
    res.end(`<p>version ${version}</p>`);
  };
  let app: Handler = () => {};
  const cache = isr({
    now: clock.now,
    revalidate: 10,
    app: (req, res, next) => app(req, res, next),
  });
  app = chain(cache as Handler, route);
  const server = http.createServer((req, res) =>
    app(req, res, () => {
      res.statusCode = 404;
      res.end();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/page`;
  const get = async () => {
    const res = await fetch(url);
    return `${res.headers.get('x-isr-cache')} ${await res.text()}`;
  };
  try {
    expect(await get()).toBe('MISS <p>version 1</p>');
    await cache.idle();
    expect(await get()).toBe('HIT <p>version 1</p>');
    clock.advanceSeconds(11);
    expect(await get()).toBe('STALE <p>version 1</p>');
    await cache.idle();
    expect(await get()).toBe('HIT <p>version 2</p>');
    expect(version).toBe(2);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await cache.close();
  }
});
