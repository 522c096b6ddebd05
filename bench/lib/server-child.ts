/**
 * The server side of an HTTP scenario: `node --import tsx server-child.ts <scenario> <variant>`.
 * Listens on port 0, tells the parent its port over IPC, answers `cpu` with the CPU time it used,
 * and on `close` stops the server and the scenario's cache, reports the render count and exits.
 * It also exits if the parent dies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { findScenario } from '../scenarios';

async function main(): Promise<void> {
  const [name, variant] = process.argv.slice(2);
  const scenario = findScenario(name);
  if (scenario?.serve === undefined) throw new Error(`no HTTP scenario named "${name}"`);
  const served = await scenario.serve(variant);
  const server = http.createServer(served.listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });

  process.on('message', async (message: { type: string }) => {
    if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      process.send?.({ type: 'cpu', micros: user + system });
      return;
    }
    if (message.type !== 'close') return;
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await served.close?.();
    process.send?.({ type: 'closed', renders: served.renders?.() }, () => process.disconnect());
  });
}

// The parent went away (done, crashed or interrupted): nothing left to serve.
process.on('disconnect', () => process.exit(0));

main().catch((error: unknown) => {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.send?.({ type: 'error', message }, () => process.exit(1));
});
