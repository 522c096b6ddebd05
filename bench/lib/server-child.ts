/**
 * The server side of an HTTP scenario:
 * `node --import tsx server-child.ts <scenario> <variant> [loop-delay]`.
 * Listens on port 0, tells the parent its port over IPC, answers `cpu` with the CPU time it used
 * (and, with `loop-delay`, the event-loop delay since the previous `cpu`), and on `close` stops
 * the server and the scenario's cache, reports the render count and notes, and exits.
 * It also exits if the parent dies.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { findScenario } from '../scenarios';

/** The loop-delay histogram samples every millisecond; that interval is subtracted. */
const LOOP_RESOLUTION_MS = 1;

async function main(): Promise<void> {
  const [name, variant, flag] = process.argv.slice(2);
  const scenario = findScenario(name);
  if (scenario?.serve === undefined) throw new Error(`no HTTP scenario named "${name}"`);
  const served = await scenario.serve(variant);
  const server = http.createServer(served.listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const loop =
    flag === 'loop-delay' ? monitorEventLoopDelay({ resolution: LOOP_RESOLUTION_MS }) : undefined;
  loop?.enable();
  process.send?.({ type: 'listening', port: (server.address() as AddressInfo).port });

  process.on('message', async (message: { type: string }) => {
    if (message.type === 'cpu') {
      const { user, system } = process.cpuUsage();
      // How long the loop was late beyond its sampling interval, in ms, since the last `cpu`.
      const late = (ns: number) => Math.max(0, ns / 1e6 - LOOP_RESOLUTION_MS);
      const loopDelay = loop && {
        p50: late(loop.percentile(50)),
        p99: late(loop.percentile(99)),
        max: late(loop.max),
      };
      loop?.reset();
      process.send?.({ type: 'cpu', micros: user + system, loopDelay });
      return;
    }
    if (message.type !== 'close') return;
    loop?.disable();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await served.close?.();
    process.send?.({ type: 'closed', renders: served.renders?.(), notes: served.notes?.() }, () =>
      process.disconnect(),
    );
  });
}

// The parent went away (done, crashed or interrupted): nothing left to serve.
process.on('disconnect', () => process.exit(0));

main().catch((error: unknown) => {
  const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
  process.send?.({ type: 'error', message }, () => process.exit(1));
});
