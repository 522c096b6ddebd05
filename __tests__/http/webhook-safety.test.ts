/**
 * The webhook dropped into a real app: a `null` where a value belongs is refused rather than
 * read as "the default", and a body trickled byte by byte is cut off after `bodyTimeout` with a
 * 408 instead of holding the request open for as long as the client likes.
 */
import net from 'node:net';
import express from 'express';
import { isr, revalidateRouter } from '../../lib';
import type { RevalidateRouterOptions } from '../../lib/invalidation/webhook/router';
import { errorRecorder } from '../helpers/collect';
import { listen } from '../helpers/http';
import { fakeClock, within } from '../helpers/time';

const SECRET = 'Safety-Webhook-Secret-0123456789';
const ENDPOINT = '/api/revalidate';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An Express 5 app with `/p` cached and the webhook mounted, on a loopback server. */
async function site(router: Partial<RevalidateRouterOptions> = {}) {
  const recorder = errorRecorder();
  const cache = isr({ now: fakeClock().now, onError: recorder.onError, logger: recorder.logger });
  const app = express();
  let renders = 0;
  app.use(cache);
  app.use(ENDPOINT, revalidateRouter(cache, { secret: SECRET, ...router }));
  app.get('/p', (_req, res) => {
    renders += 1;
    res.send(`<p>render ${renders}</p>`);
  });
  const server = await listen(app);
  cleanups.push(() => cache.close());
  cleanups.push(() => server.close());
  const visit = async (path: string) => {
    const answer = await server.get(path);
    return { status: answer.status, state: answer.headers['x-isr-cache'], body: answer.body };
  };
  expect(await visit('/p')).toEqual({ status: 200, state: 'MISS', body: '<p>render 1</p>' });
  await cache.idle();
  return { cache, server, visit, renders: () => renders };
}

const post = (
  server: Awaited<ReturnType<typeof listen>>,
  body: unknown,
  headers: Record<string, string> = {},
) =>
  server.send({
    method: 'POST',
    path: ENDPOINT,
    headers: {
      authorization: `Bearer ${SECRET}`,
      'content-type': 'application/json',
      ...headers,
    },
    body: JSON.stringify(body),
  });

describe('a JSON null is a wrong type, not the default', () => {
  test.each([
    [
      'mode',
      { path: '/p', mode: null },
      /^mode must be one of stale, expire, regenerate, got null/,
    ],
    ['type', { path: '/p', type: null }, /^type must be one of page, layout, got null/],
    ['tags', { path: '/p', tags: null }, /^tags must be an array of strings, got null/],
    ['paths', { tag: 'posts', paths: null }, /^paths must be an array of strings, got null/],
    ['path', { path: null }, /^path must be a string, got null/],
  ])('the webhook answers 400 for %s: null and invalidates nothing', async (name, body, error) => {
    const s = await site();
    const answer = await post(s.server, body);
    expect(answer.status).toBe(400);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(JSON.parse(answer.body)).toEqual({ error: expect.stringMatching(error) });
    expect({ name, ...(await s.visit('/p')) }).toEqual({
      name,
      status: 200,
      state: 'HIT',
      body: '<p>render 1</p>',
    });
    expect(s.renders()).toBe(1);
  });

  test('with mode given in the query too, a null in the body is still a 400', async () => {
    const s = await site();
    const answer = await s.server.send({
      method: 'POST',
      path: `${ENDPOINT}?mode=expire`,
      headers: { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify({ path: '/p', mode: null }),
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({ error: expect.stringMatching(/^mode .*got null/) });
    expect((await s.visit('/p')).state).toBe('HIT');
  });

  test('an absent mode or type still means the default (stale, page)', async () => {
    const s = await site();
    const answer = await post(s.server, { path: '/p' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ paths: ['/p'], mode: 'stale' });
    expect((await s.visit('/p')).state).toBe('STALE');
  });

  test('the methods throw a TypeError naming the field, and invalidate nothing', async () => {
    const s = await site();
    const calls: [string, () => Promise<unknown>][] = [
      ['mode', () => s.cache.revalidatePath('/p', { mode: null as never })],
      ['type', () => s.cache.revalidatePath('/p', { type: null as never })],
      ['mode', () => s.cache.revalidateTag('posts', { mode: null as never })],
      ['mode', () => s.cache.revalidate({ paths: ['/p'], mode: null as never })],
      ['type', () => s.cache.revalidate({ paths: ['/p'], type: null as never })],
      ['tags', () => s.cache.revalidate({ paths: ['/p'], tags: null as never })],
      ['paths', () => s.cache.revalidate({ tags: ['posts'], paths: null as never })],
    ];
    for (const [field, call] of calls) {
      const error = await call().then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).toBeInstanceOf(TypeError);
      expect((error as Error).message).toMatch(new RegExp(`^\\[express-isr\\] \\w+: ${field} `));
    }
    expect(await s.visit('/p')).toEqual({ status: 200, state: 'HIT', body: '<p>render 1</p>' });
  });
});

/**
 * Sends the head of a POST with a 100-byte body on a raw socket, then one byte of it every
 * 40 ms (4 s in all unless the server cuts in). Resolves with what came back once the server
 * closed the connection.
 */
function trickle(port: number, headers: string[]) {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let received = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    received += chunk;
  });
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(received)));
  socket.write(
    [
      `POST ${ENDPOINT} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      'Content-Type: application/json',
      'Content-Length: 100',
      ...headers,
      '',
      '',
    ].join('\r\n'),
  );
  let sent = 0;
  const timer = setInterval(() => {
    if (sent < 100 && !socket.destroyed) {
      socket.write(sent === 0 ? '{' : ' ');
      sent += 1;
    }
  }, 40);
  cleanups.push(() => {
    clearInterval(timer);
    socket.destroy();
  });
  return { closed, sent: () => sent };
}

function parseHead(text: string) {
  const [head, ...rest] = text.split('\r\n\r\n');
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers, body: rest.join('\r\n\r\n') };
}

describe('bodyTimeout: a body that does not arrive in time', () => {
  test.each([
    ['with the secret in the header', [`Authorization: Bearer ${SECRET}`]],
    ['without any secret', []],
  ])('%s: 408 with a JSON reason, and the connection is closed', async (_name, headers) => {
    const s = await site({ bodyTimeout: 200 });
    const client = trickle(s.server.port, headers);
    const text = await within(3000, client.closed);
    expect(text).not.toBe('timeout');
    const answer = parseHead(text as string);
    expect(answer.status).toBe(408);
    expect(answer.headers['content-type']).toMatch(/^application\/json/);
    expect(answer.headers.connection).toBe('close');
    expect(JSON.parse(answer.body)).toEqual({ error: expect.stringMatching(/200 ms/) });
    // Cut off long before the 100 bytes were all sent.
    expect(client.sent()).toBeLessThan(100);
    expect(await s.visit('/p')).toEqual({ status: 200, state: 'HIT', body: '<p>render 1</p>' });
  });

  test('a body that arrives within bodyTimeout is read as before', async () => {
    const s = await site({ bodyTimeout: 2000 });
    const answer = await post(s.server, { path: '/p' });
    expect(answer.status).toBe(200);
    expect((await s.visit('/p')).state).toBe('STALE');
  });

  test.each([0, -1, 1.5, '200', null, Number.NaN])(
    'bodyTimeout: %p is a TypeError naming the option',
    (bodyTimeout) => {
      const cache = isr();
      cleanups.push(() => cache.close());
      expect(() =>
        revalidateRouter(cache, { secret: SECRET, bodyTimeout: bodyTimeout as number }),
      ).toThrow(/^\[express-isr\] revalidateRouter: bodyTimeout must be a positive integer/);
    },
  );
});
