/**
 * Starts a scenario's server in a child process (pinned to the server CPU), so that the load
 * generator never shares its event loop or its core.
 */
import path from 'node:path';
import { nextMessage, spawnTs, waitForExit } from './child';
import { onCleanup } from './cleanup';
import type { Settings } from './settings';

export interface ServerHandle {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** CPU time (user + system, µs) the server process has used so far. */
  cpuMicros(): Promise<number>;
  /** Stops the server and its cache; resolves with what the child reported. */
  close(): Promise<{ renders?: number }>;
}

interface Listening {
  type: 'listening';
  port: number;
}

interface Cpu {
  type: 'cpu';
  micros: number;
}

interface Closed {
  type: 'closed';
  renders?: number;
}

export async function startServer(
  scenario: string,
  variant: string,
  settings: Settings,
): Promise<ServerHandle> {
  const what = `server ${scenario} ${variant}`;
  const child = spawnTs(
    path.join(__dirname, 'server-child.ts'),
    [scenario, variant],
    settings.pinning.used ? settings.pinning.server : undefined,
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
    async cpuMicros() {
      const reply = nextMessage<Cpu>(child, 'cpu', 5000, what);
      child.send({ type: 'cpu' });
      return (await reply).micros;
    },
    async close() {
      const closed = nextMessage<Closed>(child, 'closed', 10_000, what).catch(() => undefined);
      if (child.connected) child.send({ type: 'close' });
      const report = await closed;
      await waitForExit(child, 5000);
      unregister();
      return { renders: report?.renders };
    },
  };
}
