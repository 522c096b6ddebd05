/**
 * What one `npm run bench` uses, read once from the environment: how long each load runs,
 * how many connections, which load generator, and whether server and load generator get a
 * CPU each.
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';

export interface Pinning {
  used: boolean;
  /** CPU list for `taskset -c` (when used). */
  server?: string;
  load?: string;
  /** Printed with the results: why pinning is (not) used. */
  why: string;
}

export interface LoadGenerator {
  /** `wrk` when installed (it is not the bottleneck at 80k req/s), else autocannon. */
  name: 'wrk' | 'autocannon';
  /** Printed with the results: why this one. */
  why: string;
}

export interface Settings {
  /** Seconds of measured load per HTTP run (`BENCH_SECONDS`, default 3). */
  seconds: number;
  /** Seconds of unmeasured load before each HTTP variant (`BENCH_WARMUP`, default 1). */
  warmupSeconds: number;
  /** Concurrent connections of the load generator (`BENCH_CONNECTIONS`, default 50). */
  connections: number;
  /** Measured runs per HTTP variant; the median run by req/s is reported (`BENCH_RUNS`, default 3). */
  runs: number;
  pinning: Pinning;
  load: LoadGenerator;
  /**
   * `BENCH_CPU_PROF=<dir>`: every server child runs with `node --cpu-prof` and writes its
   * profiles in `<dir>/<scenario>--<variant>/` when it exits (slower: not for the numbers).
   */
  cpuProfileDir: string | undefined;
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  return {
    seconds: positive(env, 'BENCH_SECONDS', 3),
    warmupSeconds: positive(env, 'BENCH_WARMUP', 1, true),
    connections: positive(env, 'BENCH_CONNECTIONS', 50),
    runs: positive(env, 'BENCH_RUNS', 3),
    pinning: detectPinning(env),
    load: detectLoadGenerator(env),
    cpuProfileDir: env.BENCH_CPU_PROF || undefined,
  };
}

function positive(env: NodeJS.ProcessEnv, name: string, fallback: number, zeroOk = false): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroOk)) {
    throw new TypeError(`${name} must be a number ${zeroOk ? '>= 0' : '> 0'}, got "${text}"`);
  }
  return value;
}

/**
 * Server on CPU 0, load generator on CPU 1, so that neither steals the other's core: only when
 * `taskset` exists and both CPUs may be used by this process. `BENCH_PIN=0` turns it off.
 */
function detectPinning(env: NodeJS.ProcessEnv): Pinning {
  if (env.BENCH_PIN === '0') return { used: false, why: 'off (BENCH_PIN=0)' };
  if (os.availableParallelism() < 2) return { used: false, why: 'off (fewer than 2 CPUs)' };
  try {
    execFileSync('sh', ['-c', 'command -v taskset'], { stdio: 'ignore' });
  } catch {
    return { used: false, why: 'off (taskset not found)' };
  }
  try {
    execFileSync('taskset', ['-c', '0,1', 'true'], { stdio: 'ignore' });
  } catch {
    return { used: false, why: 'off (taskset cannot use CPUs 0 and 1 here)' };
  }
  return { used: true, server: '0', load: '1', why: 'server on CPU 0, load generator on CPU 1' };
}

/**
 * wrk when it is on the PATH (`apt-get install wrk`), autocannon otherwise; `BENCH_LOAD=wrk`
 * or `BENCH_LOAD=autocannon` chooses (wrk then must exist).
 */
function detectLoadGenerator(env: NodeJS.ProcessEnv): LoadGenerator {
  const wanted = env.BENCH_LOAD ?? '';
  if (wanted !== '' && wanted !== 'wrk' && wanted !== 'autocannon') {
    throw new TypeError(`BENCH_LOAD must be "wrk" or "autocannon", got "${wanted}"`);
  }
  if (wanted === 'autocannon') return { name: 'autocannon', why: 'chosen with BENCH_LOAD' };
  let wrk = false;
  try {
    execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' });
    wrk = true;
  } catch {}
  if (wrk) return { name: 'wrk', why: wanted === 'wrk' ? 'chosen with BENCH_LOAD' : 'found' };
  if (wanted === 'wrk')
    throw new Error('BENCH_LOAD=wrk, but wrk is not installed (apt-get install wrk)');
  return {
    name: 'autocannon',
    why: 'wrk not found (apt-get install wrk): autocannon tops out near 48k req/s here',
  };
}

/** One line describing the machine, for the table's header and RESULTS.md. */
export function machine(): string {
  const cpus = os.cpus();
  const model = cpus[0]?.model.trim() ?? 'unknown CPU';
  return `${os.availableParallelism()} CPUs (${model}), ${Math.round(os.totalmem() / 2 ** 30)} GB, node ${process.version}, ${os.platform()} ${os.release()}`;
}
