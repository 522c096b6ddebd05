// One app instance of the soak, spawned by soak-run.ts as
// `node --expose-gc --import tsx soak-instance.ts`. Configured by the environment:
//   REDIS_URL, ISR_NAMESPACE, ISR_SECRET, SOAK_RENDER_MS (a render takes 0..this many ms).
// Pages are `/p/:group/:n`; each body embeds the URL the render was given and the page's
// content version, read from the Redis hash `<namespace>:versions` (field: the path) when the
// render starts; the page is tagged with its group and `all`. One page in three is over 1 KB,
// so it is stored with br/gzip variants too. `/__heap` (mounted before the cache, never
// cached) answers the heap used after a full GC.
// Prints `READY <port>`. On SIGTERM it closes the server, the cache and its Redis clients and
// then does NOT call process.exit: it exits 0 only if nothing is left holding the event loop.
// If something is (a leaked handle), it prints `LEAK <resources>` after 4 s and exits 3.
import KeyvRedis, { createClient } from '@keyv/redis';
import express from 'express';
import Keyv from 'keyv';
import { isr, revalidateRouter } from '../../../lib';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const namespace = process.env.ISR_NAMESPACE ?? 'express-isr-test:soak';
const secret = process.env.ISR_SECRET ?? 'a-soak-secret-long-enough-for-the-router';
const renderMs = Number(process.env.SOAK_RENDER_MS ?? 4);

const report = (line: string) => process.stderr.write(`${line.replace(/\n/g, ' ')}\n`);
process.on('unhandledRejection', (reason) => {
  report(`UNHANDLED-REJECTION ${String((reason as Error)?.stack ?? reason)}`);
});

// The app's own Redis client, for the content versions.
const content = createClient({ url, socket: { connectTimeout: 2000 } });
content.on('error', (error: Error) => report(`CONTENT-REDIS ${error.message}`));

const adapter = new KeyvRedis(url);
const keyv = new Keyv({ store: adapter, namespace, useKeyPrefix: false });
const cache = isr({
  store: keyv,
  onError: (error, context) => report(`ISR-ERROR ${context.phase} ${error.message}`),
  logger: {
    warn: (...args: unknown[]) => report(`ISR-WARN ${args.join(' ')}`),
    error: (...args: unknown[]) => report(`ISR-LOG ${args.join(' ')}`),
  },
});

const filler = `<section>${'<p>Lorem ipsum dolor sit amet, consectetur adipiscing elit.</p>'.repeat(24)}</section>`;

const app = express();
// A middleware rather than a route, so the cache (mounted after it) sees no route before it.
app.use('/__heap', (_req, res) => {
  (globalThis as { gc?: () => void }).gc?.();
  res.json({ heapUsed: process.memoryUsage().heapUsed });
});
app.use(cache);
app.get('/p/:group/:n', async (req, res) => {
  const version = await content.hGet(`${namespace}:versions`, req.path);
  if (renderMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.random() * renderMs));
  res.isr({ tags: [req.params.group, 'all'] });
  const long = Number(req.params.n) % 3 === 0;
  res
    .type('html')
    .send(
      `<!doctype html><title>soak</title><main data-url="${req.originalUrl}" data-version="${version ?? 0}">${long ? filler : ''}</main>`,
    );
});
app.use('/api/revalidate', revalidateRouter(cache, { secret }));

async function main() {
  await content.connect();
  const server = app.listen(0, '127.0.0.1');
  // The soak's client keeps its connections open; without this, Node closes one idle for 5 s
  // just as the client reuses it, and that request fails with "socket hang up" (a known
  // keep-alive race of HTTP/1.1 clients, nothing to do with the cache).
  server.keepAliveTimeout = 0;
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;

  let closing = false;
  process.on('SIGTERM', () => {
    if (closing) return;
    closing = true;
    (async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await cache.close();
      await adapter.disconnect();
      await content.close();
    })().then(
      () => {
        report('CLOSED');
        // Not process.exit(): the process ends by itself once nothing holds the loop. This
        // timer does not hold it (unref); it only fires if something else still does.
        setTimeout(() => {
          report(`LEAK ${JSON.stringify(process.getActiveResourcesInfo())}`);
          process.exit(3);
        }, 4000).unref();
      },
      (error) => {
        report(`CLOSE-FAILED ${String((error as Error)?.stack ?? error)}`);
        process.exit(1);
      },
    );
  });

  process.stdout.write(`READY ${port}\n`);
}

main().catch((error) => {
  report(`START-FAILED ${String(error?.stack ?? error)}`);
  process.exit(1);
});
