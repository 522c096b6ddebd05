/**
 * Starts a scenario's server in a child process (pinned to the server CPU), so that the load
 * generator never shares its event loop or its core.
 */
import path from 'node:path';
import { nextMessage, spawnTs, waitForExit } from './child';
import { onCleanup } from './cleanup';
import type { Settings } from './settings';

/** Event-loop delay (ms beyond the 1 ms sampling interval) over a stretch of time. */
export interface LoopDelay {
  p50: number;
  p99: number;
  max: number;
}

export interface ServerSample {
  /** CPU time (user + system, µs) the server process has used so far. */
  micros: number;
  /** With `loopDelay`: the loop's delay since the previous sample. */
  loopDelay?: LoopDelay;
}

export interface ServerHandle {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** CPU time so far, and the event-loop delay since the previous sample when monitored. */
  sample(): Promise<ServerSample>;
  /** Stops the server and its cache; resolves with what the child reported. */
  close(): Promise<{ renders?: number; notes?: string[] }>;
}

export interface ServerOptions {
  /** Monitor the server's event-loop delay (`perf_hooks.monitorEventLoopDelay`). */
  loopDelay?: boolean;
}

interface Listening {
  type: 'listening';
  port: number;
}

interface Cpu extends ServerSample {
  type: 'cpu';
}

interface Closed {
  type: 'closed';
  renders?: number;
  notes?: string[];
}

export async function startServer(
  scenario: string,
  variant: string,
  settings: Settings,
  options: ServerOptions = {},
): Promise<ServerHandle> {
  const what = `server ${scenario} ${variant}`;
  const child = spawnTs(
    path.join(__dirname, 'server-child.ts'),
    [scenario, variant, ...(options.loopDelay ? ['loop-delay'] : [])],
    settings.pinning.used ? settings.pinning.server : undefined,
    profileArgs(settings, `${scenario}--${variant}`),
  );
  const unregister = onCleanup(() => {
    child.kill('SIGKILL');
    return waitForExit(child, 1000);
  });
  let listening: Listening;
  try {
    listening = await nextMessage<Listening>(child, 'listening', 20_000, what);
  } catch (error) {
    child.kill('SIGKILL');
    await waitForExit(child, 1000);
    unregister();
    throw error;
  }
  return {
    origin: `http://127.0.0.1:${listening.port}`,
    async sample() {
      const reply = nextMessage<Cpu>(child, 'cpu', 5000, what);
      child.send({ type: 'cpu' });
      const { micros, loopDelay } = await reply;
      return { micros, loopDelay };
    },
    async close() {
      const closed = nextMessage<Closed>(child, 'closed', 10_000, what).catch(() => undefined);
      if (child.connected) child.send({ type: 'close' });
      const report = await closed;
      // Writing a CPU profile at exit takes a moment.
      await waitForExit(child, settings.cpuProfileDir ? 30_000 : 5000);
      unregister();
      return { renders: report?.renders, notes: report?.notes };
    },
  };
}

/**
 * `--cpu-prof` flags when `BENCH_CPU_PROF` names a directory (see settings.ts). Every thread
 * writes a profile (tsx runs a loader thread too), so each child gets a directory of its own:
 * `<dir>/<scenario>--<variant>/`; `bench/profile-top.ts` picks the busiest profile in it.
 */
export function profileArgs(settings: Settings, name: string): string[] {
  if (settings.cpuProfileDir === undefined) return [];
  const dir = path.join(settings.cpuProfileDir, name.replace(/[^\w.-]+/g, '_'));
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}
