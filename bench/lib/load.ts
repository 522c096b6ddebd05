/** Runs the load generator (autocannon) in a child process pinned to the load CPU. */
import path from 'node:path';
import { nextMessage, spawnTs, waitForExit } from './child';
import { onCleanup } from './cleanup';
import type { Settings } from './settings';

export interface LoadConfig {
  url: string;
  connections: number;
  seconds: number;
}

export interface LoadResult {
  /** Mean requests per second over the measured run. */
  rps: number;
  /** Latency percentiles in ms (autocannon records whole milliseconds). */
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}

export async function runLoad(
  url: string,
  settings: Settings,
  seconds = settings.seconds,
): Promise<LoadResult> {
  try {
    require.resolve('autocannon');
  } catch {
    throw new Error('the load generator is missing: npm install --save-dev autocannon');
  }
  const config: LoadConfig = { url, connections: settings.connections, seconds };
  const child = spawnTs(
    path.join(__dirname, 'load-child.ts'),
    [],
    settings.pinning.used ? settings.pinning.load : undefined,
  );
  const unregister = onCleanup(() => {
    child.kill('SIGKILL');
    return waitForExit(child, 1000);
  });
  try {
    const result = nextMessage<{ type: 'result'; result: LoadResult }>(
      child,
      'result',
      (config.seconds + 30) * 1000,
      `load ${url}`,
    );
    if (child.connected) child.send({ type: 'run', config });
    return (await result).result;
  } finally {
    await waitForExit(child, 5000);
    unregister();
  }
}
