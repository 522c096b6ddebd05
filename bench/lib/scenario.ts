/**
 * The contract of a benchmark scenario. A scenario is one file in `bench/scenarios/`, listed in
 * `bench/scenarios/index.ts`; it measures a few variants and returns one row for each.
 */
import type { RequestListener } from 'node:http';
import type { Settings } from './settings';

export interface Scenario {
  /** `group/name`: `npm run bench -- group` runs every scenario of the group. */
  name: string;
  /** One line: what is measured and against what. */
  description: string;
  /** Measures every variant, in the runner's process. */
  run(context: Context): Promise<Row[]>;
  /**
   * For HTTP scenarios: builds the request listener of one variant. Called in the server child
   * process that `measureHttp` starts (pinned to its own CPU), never in the runner.
   */
  serve?(variant: string): Served | Promise<Served>;
  /**
   * For work that needs a process of its own (a clean heap, `--expose-gc`, a client pinned to
   * the load CPU): runs in the child that `runTask` (`bench/lib/task.ts`) starts, and resolves
   * with a JSON-serialisable result sent back to `run`.
   */
  task?(name: string, input: unknown): Promise<unknown>;
}

export interface Served {
  listener: RequestListener;
  /** How many times the route actually rendered, reported in the row's notes. */
  renders?: () => number;
  /** Called before the child exits (e.g. `cache.close()`). */
  close?: () => Promise<void> | void;
  /** Notes added to the variant's row when the server closes (after `close`). */
  notes?: () => string[];
}

export interface Context {
  scenario: Scenario;
  settings: Settings;
  /** Progress for the person watching (stderr); the results table goes to stdout. */
  log(message: string): void;
}

export type Unit = 'req/s' | 'µs/call' | 'ops/ms' | 'ms' | 'MB' | 'pages';

export interface Row {
  variant: string;
  /** The headline number, in `unit` (for µs/call: the median call). */
  value: number;
  unit: Unit;
  p50?: number;
  p99?: number;
  latencyUnit?: 'ms' | 'µs';
  /** HTTP: CPU time (µs) the server process spent per request during the measured run. */
  cpuPerRequest?: number;
  /** Ratios are `value / baseline value` within the same `group` of a scenario. */
  baseline?: boolean;
  /** Rows compared with each other (default: the whole scenario). */
  group?: string;
  notes?: string[];
  /** Set when the variant could not be measured (the reason is in `notes`). */
  skipped?: boolean;
}
