/**
 * Runs the load generator pinned to the load CPU: `wrk` when installed (one thread; it is not
 * the bottleneck at 80k req/s), else autocannon in a child process (tops out near 48k req/s
 * on one core here). Both keep `connections` requests in flight for `seconds`.
 */
import path from 'node:path';
import { nextMessage, spawnProgram, spawnTs, waitForExit } from './child';
import { onCleanup, throwIfStopped } from './cleanup';
import type { Settings } from './settings';

export interface LoadConfig {
  url: string;
  connections: number;
  seconds: number;
  /** Extra request headers (e.g. `If-None-Match`). */
  headers?: Record<string, string>;
}

export interface LoadResult {
  /** Mean requests per second over the measured run. */
  rps: number;
  /** Latency percentiles in ms (wrk: µs precision; autocannon: whole milliseconds). */
  p50: number;
  p99: number;
  requests: number;
  /** Responses with a status >= 400. */
  badStatus: number;
  errors: number;
  timeouts: number;
}

export async function runLoad(
  url: string,
  settings: Settings,
  seconds = settings.seconds,
  options: Pick<LoadConfig, 'headers'> = {},
): Promise<LoadResult> {
  const config: LoadConfig = { url, connections: settings.connections, seconds, ...options };
  const cpu = settings.pinning.used ? settings.pinning.load : undefined;
  return settings.load.name === 'wrk' ? runWrk(config, cpu) : runAutocannon(config, cpu);
}

const WRK_SCRIPT = path.join(__dirname, 'wrk-report.lua');

interface WrkReport {
  requests: number;
  durationMicros: number;
  p50: number;
  p99: number;
  max: number;
  connect: number;
  read: number;
  write: number;
  status: number;
  timeout: number;
}

async function runWrk(config: LoadConfig, cpu: string | undefined): Promise<LoadResult> {
  // wrk takes whole seconds.
  const seconds = Math.max(1, Math.round(config.seconds));
  const command = [
    'wrk',
    '-t1',
    `-c${config.connections}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    WRK_SCRIPT,
    ...Object.entries(config.headers ?? {}).flatMap(([name, value]) => ['-H', `${name}: ${value}`]),
    config.url,
  ];
  const child = spawnProgram(command, cpu);
  const unregister = onCleanup(() => {
    child.kill('SIGKILL');
    return waitForExit(child, 1000);
  });
  try {
    let output = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      output += chunk;
    });
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(
        () => {
          child.kill('SIGKILL');
          reject(new Error(`wrk ${config.url}: no result within ${seconds + 30} s`));
        },
        (seconds + 30) * 1000,
      );
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`wrk ${config.url}: ${error.message}`));
      });
      child.once('close', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    const line = output.split('\n').find((l) => l.startsWith('BENCH_RESULT '));
    throwIfStopped(); // killed on Ctrl-C: say so, not that wrk failed
    if (code !== 0 || line === undefined) {
      const last = output.trim().split('\n').pop() ?? '';
      throw new Error(`wrk ${config.url} exited ${code} without a result${last && `: ${last}`}`);
    }
    const r = JSON.parse(line.slice('BENCH_RESULT '.length)) as WrkReport;
    return {
      rps: r.requests / (r.durationMicros / 1e6),
      p50: r.p50 / 1000,
      p99: r.p99 / 1000,
      requests: r.requests,
      badStatus: r.status,
      errors: r.connect + r.read + r.write,
      timeouts: r.timeout,
    };
  } finally {
    await waitForExit(child, 5000);
    unregister();
  }
}

async function runAutocannon(config: LoadConfig, cpu: string | undefined): Promise<LoadResult> {
  try {
    require.resolve('autocannon');
  } catch {
    throw new Error('the load generator is missing: npm install --save-dev autocannon');
  }
  const child = spawnTs(path.join(__dirname, 'load-child.ts'), [], cpu);
  const unregister = onCleanup(() => {
    child.kill('SIGKILL');
    return waitForExit(child, 1000);
  });
  try {
    const result = nextMessage<{ type: 'result'; result: LoadResult }>(
      child,
      'result',
      (config.seconds + 30) * 1000,
      `load ${config.url}`,
    );
    if (child.connected) child.send({ type: 'run', config });
    return (await result).result;
  } finally {
    await waitForExit(child, 5000);
    unregister();
  }
}
