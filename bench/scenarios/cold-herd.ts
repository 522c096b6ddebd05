/**
 * cold/herd — issue 6, target 6: 1,000 concurrent requests for one cold page whose render
 * takes 200 ms finish in about the render time plus a few ms, with one render.
 *
 * The server (pinned to the server CPU) mounts `app.use(isr())` before a route that waits
 * 200 ms and sends a 20 KB page. The client runs in a child on the load CPU and speaks raw
 * HTTP/1.1 over 1,000 sockets it connects (and uses once, for `/ping`) before anything is
 * timed, so neither connection set-up nor an HTTP client library's overhead is measured.
 * Then it writes the 1,000 requests for a page nobody asked for yet, in one go, and times
 * until the last full response. Each round uses a new page, after one unmeasured herd (the
 * warm-up: the first herds run on code V8 has not optimised yet). The first row is one
 * request for a cold page on its own: the render time plus one request's overhead.
 *
 * The server also times each herd from the first request's arrival to the last response's
 * `finish`, which leaves out the client's share (writing 1,000 requests, reading 20 MB).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import net from 'node:net';
import express from 'express';
import { isr } from '../../lib';
import { htmlPage } from '../lib/fixtures';
import type { Row, Scenario, Served } from '../lib/scenario';
import { startServer } from '../lib/server';
import { summarize } from '../lib/stats';
import { runTask } from '../lib/task';

const PAGE = htmlPage(20 * 1024);
const RENDER_MS = 200;
const HERD = 1_000;
/** Measured herds; `BENCH_HERD_ROUNDS=20` makes them dominate a CPU profile of the server. */
const ROUNDS = Number(process.env.BENCH_HERD_ROUNDS) || 5;
const SERVER = 'app.use(isr()), render 200 ms';

/** What the server saw of one page's requests; times in ms from the first arrival. */
interface Span {
  requests: number;
  renders: number;
  /** The last request's arrival. */
  lastIn: number;
  /** The render's end (the route's `res.send`). */
  rendered: number;
  /** The last response's `finish`. */
  lastOut: number;
}

interface Herd {
  wallMs: number;
  /** Each request's time from the write to its last byte (ms). */
  latencies: number[];
  statuses: Record<string, number>;
  states: Record<string, number>;
  /** Responses whose body was not the full page. */
  short: number;
  server: Span;
}

interface ClientResult {
  singles: Herd[];
  herds: Herd[];
}

export const coldHerd: Scenario = {
  name: 'cold/herd',
  description: `${HERD.toLocaleString('en-US')} concurrent requests for one cold page rendering in ${RENDER_MS} ms: wall time and renders`,
  async run(context) {
    const server = await startServer(context.scenario.name, SERVER, context.settings);
    let result: ClientResult;
    try {
      context.log(`  ${ROUNDS} herds of ${HERD} requests (client on the load CPU)`);
      result = await runTask<ClientResult>(
        context,
        'client',
        { origin: server.origin, count: HERD, rounds: ROUNDS },
        { cpu: 'load' },
      );
    } finally {
      await server.close();
    }
    const row = (variant: string, herds: Herd[], baseline: boolean): Row => {
      const walls = summarize(herds.map((h) => h.wallMs));
      const all = summarize(herds.flatMap((h) => h.latencies));
      const count = (pick: (h: Herd) => Record<string, number>) => {
        const total: Record<string, number> = {};
        for (const h of herds)
          for (const [k, n] of Object.entries(pick(h))) total[k] = (total[k] ?? 0) + n;
        return Object.entries(total)
          .map(([k, n]) => `${n.toLocaleString('en-US')} ${k}`)
          .join(', ');
      };
      const renders = herds.map((h) => h.server.renders).join(', ');
      const short = herds.reduce((n, h) => n + h.short, 0);
      return {
        variant,
        value: walls.p50,
        unit: 'ms',
        p50: all.p50,
        p99: all.p99,
        latencyUnit: 'ms',
        baseline,
        notes: [
          `wall time, median of ${herds.length}; p50/p99 of single requests`,
          `renders per round ${renders}`,
          `client wall ${herds.map((h) => h.wallMs.toFixed(0)).join(', ')} ms`,
          `server, from the first request in: last in ${list(herds, (s) => s.lastIn)}, rendered ${list(herds, (s) => s.rendered)}, last out ${list(herds, (s) => s.lastOut)} ms`,
          `${count((h) => h.statuses)}; x-isr-cache ${count((h) => h.states)}`,
          ...(short > 0 ? [`WARNING: ${short} incomplete bodies`] : []),
        ],
      };
    };
    return [
      row('one request, cold page', result.singles, true),
      row(`${HERD.toLocaleString('en-US')} concurrent requests, cold page`, result.herds, false),
    ];
  },
  serve(variant): Served {
    if (variant !== SERVER) throw new Error(`unknown variant "${variant}"`);
    /** Per path: `performance.now()` of the first arrival, the last one, the render's end… */
    const spans = new Map<string, Omit<Span, 'lastIn' | 'rendered' | 'lastOut'> & Times>();
    let renders = 0;
    const cache = isr();
    const app = express();
    app.use(cache);
    app.get('/cold/:id', (req, res) => {
      renders += 1;
      const span = spans.get(req.path);
      if (span) span.renders += 1;
      setTimeout(() => {
        if (span) span.rendered = performance.now();
        res.isr({ revalidate: 3600 });
        res.type('html').send(PAGE);
      }, RENDER_MS);
    });
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      const url = req.url ?? '/';
      if (url === '/ping') {
        res.end('ok');
        return;
      }
      if (url.startsWith('/span/')) {
        const span = spans.get(url.slice('/span'.length));
        const since = (t: number | undefined) => (span && t ? t - span.first : Number.NaN);
        const body: Span = {
          requests: span?.requests ?? 0,
          renders: span?.renders ?? 0,
          lastIn: since(span?.lastIn),
          rendered: since(span?.rendered),
          lastOut: since(span?.lastOut),
        };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(body));
        return;
      }
      const now = performance.now();
      let span = spans.get(url);
      if (span === undefined) {
        span = { first: now, lastIn: now, rendered: 0, lastOut: 0, requests: 0, renders: 0 };
        spans.set(url, span);
      }
      span.requests += 1;
      span.lastIn = now;
      const s = span;
      res.once('finish', () => {
        s.lastOut = performance.now();
      });
      app(req, res);
    };
    return { listener, renders: () => renders, close: () => cache.close() };
  },
  async task(name, input) {
    if (name !== 'client') throw new Error(`unknown task "${name}"`);
    const { origin, count, rounds } = input as { origin: string; count: number; rounds: number };
    const { hostname, port } = new URL(origin);
    const sockets: Connection[] = [];
    try {
      // Connect in batches (the listen backlog is 511), each socket used once for /ping.
      for (let i = 0; i < count; i += 250) {
        const batch = await Promise.all(
          Array.from({ length: Math.min(250, count - i) }, () => connect(hostname, Number(port))),
        );
        await Promise.all(batch.map((c) => c.request('/ping')));
        sockets.push(...batch);
      }
      await herd(sockets, '/cold/warm-up');
      const singles: Herd[] = [];
      const herds: Herd[] = [];
      for (let round = 1; round <= rounds; round += 1) {
        singles.push(await herd(sockets.slice(0, 1), `/cold/single-${round}`));
        herds.push(await herd(sockets, `/cold/herd-${round}`));
      }
      return { singles, herds } satisfies ClientResult;
    } finally {
      for (const c of sockets) c.socket.destroy();
    }

    async function herd(group: Connection[], path: string): Promise<Herd> {
      const start = performance.now();
      const replies = await Promise.all(group.map((c) => c.request(path)));
      const wallMs = performance.now() - start;
      const server = JSON.parse((await group[0].request(`/span${path}`)).body.toString()) as Span;
      const statuses: Record<string, number> = {};
      const states: Record<string, number> = {};
      for (const r of replies) {
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        const state = `${r.headers['x-isr-cache'] ?? 'none'}${/collapsed/.test(r.headers['cache-status'] ?? '') ? ' (collapsed)' : ''}`;
        states[state] = (states[state] ?? 0) + 1;
      }
      return {
        wallMs,
        latencies: replies.map((r) => r.ms),
        statuses,
        states,
        short: replies.filter((r) => r.body.length !== PAGE.length).length,
        server,
      };
    }
  },
};

interface Times {
  first: number;
  lastIn: number;
  rendered: number;
  lastOut: number;
}

/** One number of each round's server span, e.g. `12, 15, 11`. */
function list(herds: Herd[], pick: (span: Span) => number): string {
  return herds.map((h) => pick(h.server).toFixed(0)).join(', ');
}

interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** From the write to the last byte. */
  ms: number;
}

interface Connection {
  socket: net.Socket;
  /** One GET on this keep-alive socket; replies are read with Content-Length or chunked. */
  request(path: string): Promise<RawReply>;
}

function connect(host: string, port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, noDelay: true });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve({ socket, request: (path) => rawGet(socket, host, path) });
    });
  });
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
