import cluster from 'node:cluster';
import type { Engine } from '../engine';
import type { IsrRequest } from '../types';

/** Below this many seconds, a window mostly re-renders: "SSR with extra steps". */
const SHORT_REVALIDATE_S = 5;

/** Warnings about the set-up, checked once when `isr()` is created. */
export function checkSetup(engine: Engine): void {
  const { options } = engine;
  const memory = options.store === undefined || engine.isLocalStore;
  const severalProcesses = cluster.isWorker || process.env.NODE_APP_INSTANCE !== undefined;
  if (memory && process.env.NODE_ENV === 'production' && severalProcesses) {
    engine.warn(
      'ISR_MEMORY_STORE_IN_CLUSTER',
      'the in-memory store is per process: with several processes each renders and keeps its own pages, and an invalidation reaches only the process that got it. Share a store: isr({ store: process.env.REDIS_URL }).',
    );
  }
  warnShortRevalidate(engine, options.revalidate, 'the revalidate option');
  if (options.unknownOptions.length > 0) {
    engine.warn(
      'ISR_UNKNOWN_OPTION',
      `isr() does not know the option${options.unknownOptions.length > 1 ? 's' : ''} ${options.unknownOptions.map((n) => JSON.stringify(n)).join(', ')}: ${options.unknownOptions.length > 1 ? 'they are' : 'it is'} ignored. Check the spelling against the README's Options.`,
    );
  }
}

/** A revalidate under 5 s (global or per response) is almost always a mistake. */
export function warnShortRevalidate(
  engine: Engine,
  revalidate: number | false,
  where: string,
): void {
  if (revalidate !== false && revalidate > 0 && revalidate < SHORT_REVALIDATE_S) {
    engine.warn(
      'ISR_SHORT_REVALIDATE',
      `${where} is ${revalidate}s: pages that go stale every few seconds are re-rendered almost as often as without a cache ("SSR with extra steps"). Use a longer window with on-demand revalidation.`,
    );
  }
}

interface Layer {
  handle?: unknown;
  route?: { path?: unknown };
}

/**
 * On the first request: routes registered on the same Express app *before* `isr()` answer
 * their requests before the cache sees them, so they are never cached.
 */
export function checkMountOrder(engine: Engine, req: IsrRequest, middleware: unknown): void {
  const app = req.app as
    | { _router?: { stack?: Layer[] }; router?: { stack?: Layer[] } }
    | undefined;
  let stack: Layer[] | undefined;
  try {
    stack = app?._router?.stack ?? app?.router?.stack; // Express 4 : Express 5
  } catch {
    return; // Express 4's app.router getter throws: there is no router to look at
  }
  if (!Array.isArray(stack)) return;
  const position = stack.findIndex((layer) => layer.handle === middleware);
  if (position <= 0) return;
  const before = stack.slice(0, position).filter((layer) => layer.route !== undefined);
  if (before.length === 0) return;
  const paths = before.map((layer) => String(layer.route?.path)).slice(0, 5);
  engine.warn(
    'ISR_MOUNTED_AFTER_ROUTES',
    `isr() is mounted after routes it cannot see (${paths.join(', ')}${before.length > 5 ? ', …' : ''}): those are never cached. Call app.use(isr()) before defining routes.`,
  );
}
