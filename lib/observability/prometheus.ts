import { createRequire } from 'node:module';
import { missingPackage } from '../validate';
import { DURATION_BUCKETS, type ObserverSink } from './observer';

/** The part of a prom-client `Registry` we need; the user passes their own. */
export interface PrometheusRegistry {
  registerMetric(metric: unknown): void;
}

export interface MetricsOptions {
  /** A prom-client `Registry` (e.g. `client.register`): the metrics are registered on it. */
  registry: PrometheusRegistry;
  /** Prefix of the metric names. @default 'express_isr_' */
  prefix?: string;
}

interface Counter {
  inc(labels?: Record<string, string>): void;
}
interface Histogram {
  observe(value: number): void;
}
interface PromClient {
  Counter: new (config: object) => Counter;
  Histogram: new (config: object) => Histogram;
}

/**
 * Counters and a histogram in prom-client, registered on the user's registry, fed from the
 * same counts as `cache.stats()`. prom-client is loaded only when asked for: no dependency.
 */
export function prometheusSink({
  registry,
  prefix = 'express_isr_',
}: MetricsOptions): ObserverSink {
  let client: PromClient;
  try {
    client = createRequire(__filename)('prom-client');
  } catch {
    missingPackage('metrics', 'prom-client installed', 'prom-client');
  }
  const common = { registers: [registry] };
  const requests = new client.Counter({
    ...common,
    name: `${prefix}requests_total`,
    help: 'Requests the cache answered or passed on, by x-isr-cache state',
    labelNames: ['state'],
  });
  const regenerations = new client.Counter({
    ...common,
    name: `${prefix}regenerations_total`,
    help: 'Background regenerations, by result',
    labelNames: ['result'],
  });
  const duration = new client.Histogram({
    ...common,
    name: `${prefix}regeneration_duration_seconds`,
    help: 'Duration of successful background regenerations',
    buckets: DURATION_BUCKETS,
  });
  const revalidations = new client.Counter({
    ...common,
    name: `${prefix}revalidations_total`,
    help: 'On-demand invalidations, by mode and source',
    labelNames: ['mode', 'source'],
  });
  const storeErrors = new client.Counter({
    ...common,
    name: `${prefix}store_errors_total`,
    help: 'Store outages (one per outage, not per failed call)',
  });
  return {
    request: (state) => requests.inc({ state }),
    regeneration: (result, seconds) => {
      regenerations.inc({ result });
      if (seconds !== undefined) duration.observe(seconds);
    },
    revalidation: (mode, source) => revalidations.inc({ mode, source }),
    storeError: () => storeErrors.inc(),
  };
}
