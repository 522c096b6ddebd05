import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './time';

/**
 * A throwaway Redis Cluster on loopback for the tests: N masters, no replicas, no persistence,
 * started from `redis-server --cluster-enabled yes` and joined with `redis-cli --cluster create`.
 * Every step is bounded in time; `startRedisCluster` rejects (with the servers' log tails) if
 * the cluster does not come up, so a suite using it fails instead of skipping.
 */
export interface RedisCluster {
  ports: number[];
  /** For `createCluster({ rootNodes })`. */
  rootNodes: { url: string }[];
  /** Runs one command on one node through `redis-cli --raw`; resolves with its output lines. */
  cli(port: number, ...args: string[]): Promise<string[]>;
  /** The port of the master that owns `key`'s slot. */
  nodeOf(key: string): Promise<number>;
  /** The keys matching `pattern` on each master (KEYS is node-local on a cluster). */
  keysByNode(pattern: string): Promise<Map<number, string[]>>;
  /** Kills the servers and removes their directory. */
  stop(): Promise<void>;
}

const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server';
const REDIS_CLI = process.env.REDIS_CLI ?? 'redis-cli';
/** The cluster bus listens on port + 10000: both must be free, and below 65536. */
const BUS_OFFSET = 10_000;

export async function startRedisCluster({
  masters = 3,
  timeoutMs = 20_000,
}: {
  masters?: number;
  timeoutMs?: number;
} = {}): Promise<RedisCluster> {
  const deadline = Date.now() + timeoutMs;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'express-isr-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];

  const cli = (port: number, ...args: string[]) =>
    run(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), '--raw', ...args], 5000).then((out) =>
      out.split('\n').filter((line) => line !== ''),
    );

  const stop = async () => {
    await Promise.all(children.map((child) => kill(child)));
    await rm(dir, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < masters; i += 1) {
      const port = await freePortPair(ports);
      ports.push(port);
      const child = spawn(
        REDIS_SERVER,
        [
          '--port',
          String(port),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          path.join(dir, `nodes-${port}.conf`),
          '--cluster-node-timeout',
          '2000',
          '--save',
          '',
          '--appendonly',
          'no',
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--logfile',
          path.join(dir, `redis-${port}.log`),
          '--daemonize',
          'no',
        ],
        { stdio: 'ignore' },
      );
      child.on('error', () => {}); // reported through the PING wait below
      children.push(child);
    }

    await Promise.all(
      ports.map((port) =>
        waitFor(
          `redis-server on ${port} answers PING`,
          async () => {
            const out = await cli(port, 'PING').catch(() => []);
            return out[0] === 'PONG';
          },
          Math.max(0, deadline - Date.now()),
          50,
        ),
      ),
    );

    await run(
      REDIS_CLI,
      [
        '--cluster',
        'create',
        ...ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      Math.max(1000, deadline - Date.now()),
    );

    await Promise.all(
      ports.map((port) =>
        waitFor(
          `node ${port} reports cluster_state:ok`,
          async () => {
            const info = (await cli(port, 'CLUSTER', 'INFO').catch(() => [])).join('\n');
            return (
              info.includes('cluster_state:ok') &&
              info.includes('cluster_slots_assigned:16384') &&
              info.includes(`cluster_known_nodes:${masters}`)
            );
          },
          Math.max(0, deadline - Date.now()),
          50,
        ),
      ),
    );
  } catch (error) {
    const logs = await Promise.all(
      ports.map((port) =>
        readFile(path.join(dir, `redis-${port}.log`), 'utf8')
          .then((text) => `--- redis ${port} ---\n${text.split('\n').slice(-15).join('\n')}`)
          .catch(() => `--- redis ${port}: no log ---`),
      ),
    );
    await stop();
    throw new Error(
      `could not start a Redis Cluster (${REDIS_SERVER}, ${REDIS_CLI}): ${(error as Error).message}\n${logs.join('\n')}`,
    );
  }

  /** Which master serves which slots, from CLUSTER NODES: `<id> <ip:port@bus> <flags> … <slots>`. */
  const slotOwners: { port: number; ranges: [number, number][] }[] = [];
  for (const line of await cli(ports[0], 'CLUSTER', 'NODES')) {
    const fields = line.split(' ');
    if (!fields[2]?.includes('master')) continue;
    const port = Number(fields[1].split('@')[0].split(':')[1]);
    const ranges = fields
      .slice(8)
      .filter((slot) => /^\d+(-\d+)?$/.test(slot))
      .map((slot) => {
        const [from, to = from] = slot.split('-').map(Number);
        return [from, to] as [number, number];
      });
    slotOwners.push({ port, ranges });
  }

  return {
    ports,
    rootNodes: ports.map((port) => ({ url: `redis://127.0.0.1:${port}` })),
    cli,
    async nodeOf(key) {
      const slot = Number((await cli(ports[0], 'CLUSTER', 'KEYSLOT', key))[0]);
      const owner = slotOwners.find(({ ranges }) =>
        ranges.some(([from, to]) => slot >= from && slot <= to),
      );
      if (owner === undefined) throw new Error(`no master owns slot ${slot}`);
      return owner.port;
    },
    async keysByNode(pattern) {
      const found = new Map<number, string[]>();
      for (const port of ports) found.set(port, await cli(port, 'KEYS', pattern));
      return found;
    },
    stop,
  };
}

function run(file: string, args: string[], timeout: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.join(' ')}: ${error.message} ${stderr}`));
      else resolve(stdout);
    });
  });
}

/** A random port in 30000–39999 that is free on loopback, as is its cluster-bus port. */
async function freePortPair(taken: number[]): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const port = 30_000 + Math.floor(Math.random() * 10_000);
    if (taken.includes(port)) continue;
    if ((await portFree(port)) && (await portFree(port + BUS_OFFSET))) return port;
  }
  throw new Error('no free port pair found for a cluster node');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** SIGTERM, then SIGKILL if the server is still there after a second. */
async function kill(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 1000);
  await exited;
  clearTimeout(timer);
}
