/**
 * Starts the demo blog: opens the CMS (seeding it on first start), builds the app, prerenders
 * the newest posts, then listens. `npm run demo`; configured by the environment (config.ts):
 *   PORT=3000 ISR_SECRET=… REDIS_URL=redis://… CMS_LATENCY_MS=300 REVALIDATE=10 DATA_DIR=…
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createDemoApp, prerenderPaths } from './app';
import { openCms } from './cms';
import { loadConfig } from './config';

export async function startDemo(): Promise<void> {
  const config = loadConfig();
  const log = (line: string) => console.log(`[${process.pid}] ${line}`);
  const cms = await openCms({ dir: config.dataDir, latencyMs: config.cmsLatencyMs });
  let port = config.port;
  const { app, cache } = createDemoApp(config, cms, () => `http://127.0.0.1:${port}`, log);

  // The generateStaticParams idea: render the pages most visitors open first before anyone
  // asks, so even their first visitor gets a HIT. A page already fresh in the store (another
  // process did it, or Redis kept it from the last run) is left alone.
  const started = Date.now();
  const results = await cache.prerender(await prerenderPaths(config, cms), {
    concurrency: 4,
    app,
  });
  const outcomes = results.map((r) => `${r.path} ${r.outcome}${r.reason ? ` (${r.reason})` : ''}`);
  log(`prerendered in ${Date.now() - started} ms: ${outcomes.join(', ')}`);

  const server = app.listen(config.port);
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  const store = config.redisUrl ? `Redis at ${config.redisUrl}` : 'in-memory store';
  log(
    `express-isr demo on http://localhost:${port} (${store}, revalidate ${config.revalidate} s, ` +
      `CMS latency ${config.cmsLatencyMs} ms, posts in ${cms.file})`,
  );
  if (config.secretGenerated) {
    log(`ISR_SECRET was not set; this run's secret (webhook, and /admin/ password):`);
    log(`  export ISR_SECRET=${config.secret}`);
  }

  let closing = false;
  const shutdown = () => {
    if (closing) return;
    closing = true;
    server.close();
    server.closeAllConnections();
    cache.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
}

if (require.main === module) {
  startDemo().catch((error) => {
    console.error(error);
    process.exit(1);
  });
}
