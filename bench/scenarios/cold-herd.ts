/**
 * cold/herd — 1,000 concurrent requests for one cold page whose render
 * takes 200 ms finish in about the render time plus a few ms, with one render.
 *
 * Four servers, each in its own child pinned to the server CPU:
 * - the floor: a bare `node:http` server that holds the requests for 200 ms and then answers
 *   all of them from one precomputed Buffer with the same headers the cache sends. It is what
 *   this machine needs to send 1,000 × 20 KB responses from one core; no cache can beat it.
 * - the same floor as an Express route: what Express itself costs per waiting request;
 * - `app.use(isr())` before an Express route that waits 200 ms and sends a 20 KB page;
 * - the same app behind `http.createServer(cache.handler(app))`.
 * The client runs in a child on the load CPU and speaks raw HTTP/1.1 over 1,000 sockets per
 * server, connected (and used once, for `/ping`) before anything is timed, so neither
 * connection set-up nor an HTTP client library's overhead is measured. Then it writes the 1,000
 * requests for a page nobody asked for yet, in one go, and times until the last full response.
 * It takes the servers in turn, herd by herd, each round with a new page, after three
 * unmeasured herds per server (the warm-up: the first herds run on code V8 has not optimised
 * yet). The first row is one request for a cold page on its own: the render time plus one
 * request's overhead, the baseline of the ratios.
 *
 * The servers also time each herd from the first request's arrival: the last arrival, the
 * render's end and the last response's `finish`; "fan-out" is the time from the render's end
 * to that last `finish`, which leaves out the client's share (writing 1,000 requests, reading
 * 20 MB).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import { isr } from '../../lib';
import { htmlPage } from '../lib/fixtures';
import { type Connection, connectMany } from '../lib/raw-client';
import type { Row, Scenario, Served } from '../lib/scenario';
import { startServer } from '../lib/server';
import { summarize } from '../lib/stats';
import { runTask } from '../lib/task';

const PAGE = htmlPage(20 * 1024);
const RENDER_MS = 200;
const HERD = 1_000;
/** Measured herds; `BENCH_HERD_ROUNDS=20` makes them dominate a CPU profile of the server. */
const ROUNDS = Number(process.env.BENCH_HERD_ROUNDS) || 10;
/** Unmeasured herds first: V8 optimises the code of both sides over the first few. */
const WARM_UP_HERDS = 3;
const SERVER = 'app.use(isr()), render 200 ms';
/** The floor (see above). */
const FLOOR = 'node:http, held 200 ms, then one Buffer';
/** The same app behind `cache.handler(app)`: waiters join the render before Express sees them. */
const FAST = 'cache.handler(app), render 200 ms';
/** The floor behind Express: the same, as an Express route (what Express costs per waiter). */
const EXPRESS_FLOOR = 'express route, held 200 ms, then one Buffer';
const SERVERS = [FLOOR, EXPRESS_FLOOR, SERVER, FAST];

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
    // All servers run at once and the client takes them in turn, herd by herd, so that a busy
    // moment on the machine weighs on every variant alike.
    const servers = [];
    const results = new Map<string, ClientResult>();
    try {
      for (const variant of SERVERS) {
        servers.push(await startServer(context.scenario.name, variant, context.settings));
      }
      context.log(
        `  ${ROUNDS} herds of ${HERD} requests per server, in turn (client on the load CPU)`,
      );
      const byServer = await runTask<ClientResult[]>(
        context,
        'client',
        { origins: servers.map((s) => s.origin), count: HERD, rounds: ROUNDS },
        { cpu: 'load' },
      );
      for (const [i, variant] of SERVERS.entries()) results.set(variant, byServer[i]);
    } finally {
      await Promise.all(servers.map((s) => s.close()));
    }
    const row = (variant: string, herds: Herd[], baseline: boolean, extra: string[] = []): Row => {
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
          ...extra,
          `wall time, median of ${herds.length}; p50/p99 of single requests`,
          `fan-out after the render (server) median ${summarize(herds.map((h) => h.server.lastOut - h.server.rendered)).p50.toFixed(1)} ms`,
          `renders per round ${renders}`,
          `client wall ${herds.map((h) => h.wallMs.toFixed(0)).join(', ')} ms`,
          `server, from the first request in: last in ${list(herds, (s) => s.lastIn)}, rendered ${list(herds, (s) => s.rendered)}, last out ${list(herds, (s) => s.lastOut)} ms`,
          `${count((h) => h.statuses)}; x-isr-cache ${count((h) => h.states)}`,
          ...(short > 0 ? [`WARNING: ${short} incomplete bodies`] : []),
        ],
      };
    };
    const herdOf = `${HERD.toLocaleString('en-US')} concurrent requests`;
    const of = (variant: string) => {
      const result = results.get(variant);
      if (result === undefined) throw new Error(`the herd server "${variant}" did not run`);
      return result;
    };
    const wall = (herds: Herd[]) => summarize(herds.map((h) => h.wallMs)).p50;
    const floorWall = wall(of(FLOOR).herds);
    const overFloor = (herds: Herd[]) => [
      `${(wall(herds) - floorWall).toFixed(0)} ms over the floor`,
    ];
    return [
      row(`${SERVER}: one request`, of(SERVER).singles, true),
      row(`${FLOOR}: ${herdOf}`, of(FLOOR).herds, false, [
        'reference: the fastest fan-out possible',
      ]),
      row(`${EXPRESS_FLOOR}: ${herdOf}`, of(EXPRESS_FLOOR).herds, false, [
        'reference: the same behind Express',
        ...overFloor(of(EXPRESS_FLOOR).herds),
      ]),
      row(`${SERVER}: ${herdOf}`, of(SERVER).herds, false, overFloor(of(SERVER).herds)),
      row(`${FAST}: ${herdOf}`, of(FAST).herds, false, overFloor(of(FAST).herds)),
    ];
  },
  serve(variant): Served {
    /** Per path: `performance.now()` of the first arrival, the last one, the render's end… */
    const spans = new Map<string, Omit<Span, 'lastIn' | 'rendered' | 'lastOut'> & Times>();
    let renders = 0;
    const rendering = (path: string) => {
      renders += 1;
      const span = spans.get(path);
      if (span) span.renders += 1;
      return () => {
        if (span) span.rendered = performance.now();
      };
    };
    if (!SERVERS.includes(variant)) throw new Error(`unknown variant "${variant}"`);
    const page =
      variant === FLOOR
        ? floorServer(rendering)
        : variant === EXPRESS_FLOOR
          ? expressFloorServer(rendering)
          : cachedServer(rendering, variant === FAST);
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
      page.listener(req, res);
    };
    return { listener, renders: () => renders, close: page.close };
  },
  async task(name, input) {
    if (name !== 'client') throw new Error(`unknown task "${name}"`);
    const { origins, count, rounds } = input as {
      origins: string[];
      count: number;
      rounds: number;
    };
    const servers: Connection[][] = [];
    try {
      for (const origin of origins) servers.push(await connectMany(origin, count));
      for (let round = 1; round <= WARM_UP_HERDS; round += 1) {
        for (const sockets of servers) await herd(sockets, `/cold/warm-up-${round}`);
      }
      const results: ClientResult[] = servers.map(() => ({ singles: [], herds: [] }));
      for (let round = 1; round <= rounds; round += 1) {
        for (const [i, sockets] of servers.entries()) {
          results[i].singles.push(await herd(sockets.slice(0, 1), `/cold/single-${round}`));
          results[i].herds.push(await herd(sockets, `/cold/herd-${round}`));
        }
      }
      return results;
    } finally {
      for (const c of servers.flat()) c.socket.destroy();
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

/** Starts one render of `path`; the function it returns marks the render's end. */
type Rendering = (path: string) => () => void;

/**
 * `app.use(isr())` before a route that takes `RENDER_MS` to send the page; with `fast`, the
 * app is behind `cache.handler(app)`.
 */
function cachedServer(rendering: Rendering, fast: boolean): Served {
  const cache = isr();
  const app = express();
  app.use(cache);
  app.get('/cold/:id', (req, res) => {
    const rendered = rendering(req.path);
    setTimeout(() => {
      rendered();
      res.isr({ revalidate: 3600 });
      res.type('html').send(PAGE);
    }, RENDER_MS);
  });
  return { listener: fast ? cache.handler(app) : app, close: () => cache.close() };
}

/**
 * The floor: the first request for a path starts a `RENDER_MS` timer, every request for it
 * waits in a list, and the timer answers them all with one precomputed head and Buffer.
 */
function floorServer(rendering: Rendering): Served {
  return { listener: holdAndAnswer(rendering) };
}

/** The floor as an Express route: Express parses, routes and decorates every waiting request. */
function expressFloorServer(rendering: Rendering): Served {
  const app = express();
  const answer = holdAndAnswer(rendering);
  app.get('/cold/:id', (req, res) => answer(req, res));
  return { listener: app };
}

/**
 * The first request for a path starts a `RENDER_MS` timer, every request for it waits in a
 * list, and the timer answers them all with one precomputed head and Buffer.
 */
function holdAndAnswer(rendering: Rendering): (req: IncomingMessage, res: ServerResponse) => void {
  const body = Buffer.from(PAGE);
  // The same headers as the cache's collapsed MISS, so that only the cache's own work differs.
  const head = [
    ['x-powered-by', 'Express'],
    ['content-type', 'text/html; charset=utf-8'],
    ['date', new Date().toUTCString()],
    ['etag', '"floor"'],
    ['age', '0'],
    ['x-isr-cache', 'MISS'],
    ['cache-status', 'express-isr; fwd=uri-miss; collapsed'],
    ['cache-control', 's-maxage=3600, stale-while-revalidate=3600'],
    ['content-length', String(body.length)],
  ].flat();
  const waiting = new Map<string, ServerResponse[]>();
  return (req, res) => {
    const path = req.url ?? '/';
    const list = waiting.get(path);
    if (list !== undefined) {
      list.push(res);
      return;
    }
    waiting.set(path, [res]);
    const rendered = rendering(path);
    setTimeout(() => {
      rendered();
      const all = waiting.get(path) ?? [];
      waiting.delete(path);
      for (const r of all) {
        r.writeHead(200, head);
        r.end(body);
      }
    }, RENDER_MS);
  };
}

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
