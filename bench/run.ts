/**
 * `npm run bench [-- <scenario or group> ...]`: runs the selected scenarios in turn and prints
 * one table (Markdown) with every variant's result and its ratio to the baseline measured in
 * the same run. Progress goes to stderr, the table to stdout. `--list` lists the scenarios.
 * Settings: BENCH_SECONDS, BENCH_WARMUP, BENCH_CONNECTIONS, BENCH_RUNS, BENCH_PIN, BENCH_LOAD,
 * BENCH_CPU_PROF, REDIS_URL (see bench/README.md).
 */
import os from 'node:os';
import { killChildren } from './lib/child';
import { cleanupAll, requestStop, stopped } from './lib/cleanup';
import type { Context } from './lib/scenario';
import { machine, readSettings } from './lib/settings';
import { formatTable, type ResultRow } from './lib/table';
import { scenarios, selectScenarios } from './scenarios';

const log = (message: string) => process.stderr.write(`${message}\n`);

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const s of scenarios) console.log(`${s.name.padEnd(32)} ${s.description}`);
    return 0;
  }
  const selected = selectScenarios(args);
  const settings = readSettings();
  // Other work on the machine skews every number: say how busy it was when we started.
  const loadBefore = os.loadavg()[0].toFixed(2);
  const started = new Date();
  const rows: ResultRow[] = [];
  let failures = 0;

  for (const scenario of selected) {
    if (stopped()) break;
    log(`▶ ${scenario.name}: ${scenario.description}`);
    const context: Context = { scenario, settings, log };
    try {
      for (const row of await scenario.run(context)) rows.push({ scenario: scenario.name, ...row });
    } catch (error) {
      failures += 1;
      log(`✖ ${scenario.name} failed: ${error instanceof Error ? error.stack : error}`);
      rows.push({
        scenario: scenario.name,
        variant: '(failed)',
        value: Number.NaN,
        unit: 'req/s',
        skipped: true,
        notes: [`FAILED: ${error instanceof Error ? error.message : error}`],
      });
    } finally {
      await cleanupAll();
    }
  }

  const seconds = ((Date.now() - started.getTime()) / 1000).toFixed(0);
  console.log(`\nexpress-isr benchmarks, ${started.toISOString()} (${seconds} s)`);
  console.log(`machine: ${machine()}; load average before the run ${loadBefore}`);
  console.log(`pinning: ${settings.pinning.used ? 'yes' : 'no'}, ${settings.pinning.why}`);
  const generator =
    settings.load.name === 'wrk' ? 'wrk (1 thread)' : `autocannon (${settings.load.why})`;
  console.log(
    `load: ${generator}, ${settings.connections} connections, ${settings.warmupSeconds} s warm-up, ` +
      `${settings.seconds} s per run, ${settings.runs} run(s) per variant`,
  );
  if (settings.cpuProfileDir !== undefined)
    console.log(`CPU profiles in ${settings.cpuProfileDir}: the servers ran slower than usual`);
  console.log('');
  console.log(formatTable(rows));
  console.log(
    '\nratio = result / the baseline row of the same scenario (and group): for req/s higher is ' +
      'faster; for µs/call and ms lower is faster; for MB lower is smaller.',
  );
  return stopped() ? 130 : failures === 0 ? 0 : 1;
}

// First Ctrl-C: stop measuring and unwind, so every scenario closes what it opened (a write
// racing a cleanup would leave keys in Redis). A second one, or 15 s later: clean up and exit.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (stopped()) {
      cleanupAll().finally(() => process.exit(130));
      return;
    }
    requestStop();
    killChildren();
    log(`\n${signal}: stopping; closing servers and deleting benchmark keys…`);
    setTimeout(() => cleanupAll().finally(() => process.exit(130)), 15_000).unref();
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  async (error: unknown) => {
    log(error instanceof Error ? error.message : String(error));
    await cleanupAll();
    process.exitCode = 2;
  },
);
