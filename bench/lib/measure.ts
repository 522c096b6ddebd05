/** The two ways a scenario measures: HTTP load on a server child, or timed calls in-process. */
import { throwIfStopped } from './cleanup';
import { describe, type Expected, get, matches, until } from './http';
import { type LoadResult, runLoad } from './load';
import type { Context, Row } from './scenario';
import { type ServerHandle, startServer } from './server';
import { medianBy, summarize } from './stats';

export interface HttpVariant {
  /** Passed to the scenario's `serve(variant)` in the server child, and shown in the table. */
  variant: string;
  /** Path requested by the load generator. */
  path: string;
  /** Request headers sent with every request (checks and load), e.g. `If-None-Match`. */
  headers?: Record<string, string>;
  /** The status every measured response must have. @default 200 */
  status?: number;
  /**
   * Headers every measured response must have (e.g. `{ 'x-isr-cache': 'HIT' }`): awaited
   * before the load, checked again after it.
   */
  expect?: Record<string, string>;
  /** How many tries the check before the load gets (25 ms apart). @default 40 */
  readyAttempts?: number;
  baseline?: boolean;
  group?: string;
  notes?: string[];
}

interface Run extends LoadResult {
  cpuPerRequest: number;
}

/**
 * Starts every variant's server (each in its own child, all on the server CPU; only the one
 * under load is busy), waits until each answers as expected, then runs the load in rounds —
 * A, B, C, A, B, C… — `settings.runs` times, so a noisy moment on the machine weighs on all
 * variants alike. Each row reports its median run by req/s, and the server's CPU time per
 * request in that run (less sensitive than req/s to other work on the machine).
 */
export async function measureHttp(context: Context, variants: HttpVariant[]): Promise<Row[]> {
  const { scenario, settings } = context;
  const servers: ServerHandle[] = [];
  const runs: Run[][] = variants.map(() => []);
  const notes: string[][] = variants.map((v) => [...(v.notes ?? [])]);
  const expected = (v: HttpVariant): Expected => ({ status: v.status, headers: v.expect });
  try {
    for (const v of variants) {
      throwIfStopped();
      const server = await startServer(scenario.name, v.variant, settings);
      servers.push(server);
      await until(server.origin + v.path, expected(v), v.headers, v.readyAttempts);
    }
    for (let round = 0; round < settings.runs; round += 1) {
      for (const [i, v] of variants.entries()) {
        throwIfStopped();
        context.log(`  ${v.variant}: run ${round + 1}/${settings.runs}, ${settings.seconds} s`);
        const server = servers[i];
        const url = server.origin + v.path;
        if (round === 0 && settings.warmupSeconds > 0)
          await runLoad(url, settings, settings.warmupSeconds, v);
        const before = await server.sample();
        const run = await runLoad(url, settings, settings.seconds, v);
        const after = await server.sample();
        runs[i].push({
          ...run,
          cpuPerRequest: (after.micros - before.micros) / Math.max(1, run.requests),
        });
      }
    }
    for (const [i, v] of variants.entries()) {
      const reply = await get(servers[i].origin + v.path, v.headers);
      if (!matches(reply, expected(v))) notes[i].push(`WARNING: after the load ${describe(reply)}`);
    }
  } finally {
    for (const [i, server] of servers.entries()) {
      const { renders, notes: served } = await server.close();
      if (renders !== undefined) notes[i].push(`renders ${renders}`);
      notes[i].push(...(served ?? []));
    }
  }
  return variants.map((v, i) => {
    const run = medianBy(runs[i], (r) => r.rps);
    const failed = runs[i].reduce((n, r) => n + r.badStatus + r.errors + r.timeouts, 0);
    if (failed > 0) notes[i].push(`WARNING: ${failed} 4xx-5xx/errors/timeouts`);
    if (runs[i].length > 1) notes[i].push(`median of ${runs[i].length} runs`);
    return {
      variant: v.variant,
      value: run.rps,
      unit: 'req/s',
      p50: run.p50,
      p99: run.p99,
      latencyUnit: 'ms',
      cpuPerRequest: run.cpuPerRequest,
      baseline: v.baseline,
      group: v.group,
      notes: notes[i],
    };
  });
}

/**
 * Times `count` sequential calls of `call(i)` one by one, after `warmup` untimed calls of
 * `warm(i)`; returns each call's duration in µs.
 */
export async function timeCalls(
  count: number,
  call: (i: number) => unknown,
  warmup = 0,
  warm: (i: number) => unknown = call,
): Promise<number[]> {
  for (let i = 0; i < warmup; i += 1) {
    throwIfStopped();
    await warm(i);
  }
  const samples: number[] = [];
  for (let i = 0; i < count; i += 1) {
    throwIfStopped();
    const start = process.hrtime.bigint();
    await call(i);
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  return samples;
}

/** A µs/call row from timed samples: the median call is the headline number. */
export function callRow(variant: string, samples: number[], extra: Partial<Row> = {}): Row {
  const s = summarize(samples);
  return {
    variant,
    value: s.p50,
    unit: 'µs/call',
    p50: s.p50,
    p99: s.p99,
    latencyUnit: 'µs',
    ...extra,
    notes: [`${s.count} calls`, ...(extra.notes ?? [])],
  };
}
