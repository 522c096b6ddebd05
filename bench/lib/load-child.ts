/**
 * The autocannon load generator (used when wrk is not installed): receives a `LoadConfig`
 * over IPC, runs autocannon and sends back a `LoadResult`. Exits if the parent dies.
 */
import autocannon from 'autocannon';
import type { LoadConfig, LoadResult } from './load';

async function run(config: LoadConfig): Promise<LoadResult> {
  const result = await autocannon({
    url: config.url,
    connections: config.connections,
    duration: config.seconds,
    headers: config.headers,
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: result.requests.total,
    badStatus: result['4xx'] + result['5xx'],
    errors: result.errors,
    timeouts: result.timeouts,
  };
}

process.on('disconnect', () => process.exit(0));

process.once('message', (message: { type: 'run'; config: LoadConfig }) => {
  run(message.config).then(
    (result) => process.send?.({ type: 'result', result }, () => process.disconnect()),
    (error: unknown) =>
      process.send?.({ type: 'error', message: String(error) }, () => process.exit(1)),
  );
});
