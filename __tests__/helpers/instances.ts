import { type ChildProcess, spawn } from 'node:child_process';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import { sleep } from './time';

/**
 * Real processes for the many-instances tests: app instances (`fixtures/instance.ts`) and
 * throwaway `redis-server`s on loopback ports. Everything started here is remembered and
 * stopped by `stopEverything()` (call it in afterEach), so a failing test leaks no child.
 */

const FIXTURE = path.join(__dirname, '..', 'fixtures', 'instance.ts');
const started = new Set<{ stop(): Promise<unknown> }>();

/** Stops every instance and Redis server still running, instances first. */
export async function stopEverything(): Promise<void> {
  const all = [...started];
  await Promise.all(all.filter((p) => p instanceof Instance).map((p) => p.stop()));
  await Promise.all(all.filter((p) => !(p instanceof Instance)).map((p) => p.stop()));
}

/** A loopback port nobody listens on right now. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Resolves when the child has exited (at once if it already has). */
function exited(child: ChildProcess): Promise<Exit> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  }
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** SIGTERM, then SIGKILL if the child is still there after `graceMs`. */
async function terminate(child: ChildProcess, graceMs: number): Promise<Exit> {
  const exit = exited(child);
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  try {
    return await exit;
  } finally {
    clearTimeout(timer);
  }
}

export interface InstanceOptions {
  redisUrl: string;
  namespace: string;
  /** The in-process copy in front of Redis. */
  l1: boolean;
  /** Seconds, `false`; the library's default when left out. */
  revalidate?: number | false;
  secret: string;
  /** How long a render of `/page/:id` takes, ms (default 80). */
  renderMs?: number;
  /** More environment for the fixture (see `fixtures/instance.ts`). */
  env?: Record<string, string>;
}

/** One app process: Express 5 + isr() on a Redis Keyv, see `fixtures/instance.ts`. */
export class Instance {
  private output = '';
  private constructor(
    readonly name: string,
    readonly port: number,
    private readonly child: ChildProcess,
    output: string,
  ) {
    this.output = output;
    child.stderr?.on('data', (chunk: Buffer) => {
      this.output += chunk.toString();
    });
  }

  /** What the process wrote to stderr: errors and warnings the library reported, crashes. */
  get stderr(): string {
    return this.output;
  }

  /** Lines the fixture printed for `onError` (`ISR-ERROR <phase> <message>`). */
  get reportedErrors(): string[] {
    return this.output.split('\n').filter((line) => line.startsWith('ISR-ERROR '));
  }

  static async start(name: string, options: InstanceOptions): Promise<Instance> {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
      cwd: path.join(__dirname, '..', '..'),
      env: {
        ...process.env,
        REDIS_URL: options.redisUrl,
        ISR_NAMESPACE: options.namespace,
        ISR_L1: options.l1 ? '1' : '0',
        ISR_REVALIDATE: options.revalidate === undefined ? '' : String(options.revalidate),
        ISR_SECRET: options.secret,
        ISR_RENDER_MS: String(options.renderMs ?? 80),
        DEBUG: '',
        ...options.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const handle = { stop: () => terminate(child, 5000) };
    started.add(handle);
    child.once('exit', () => started.delete(handle));

    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const port = await new Promise<number>((resolve, reject) => {
      let stdout = '';
      const timer = setTimeout(
        () => reject(new Error(`instance ${name} not ready after 20 s:\n${stderr}`)),
        20_000,
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const ready = /READY (\d+)/.exec(stdout);
        if (ready) {
          clearTimeout(timer);
          resolve(Number(ready[1]));
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`instance ${name} exited (${code ?? signal}) before READY:\n${stderr}`));
      });
    });
    child.stdout?.resume();
    const instance = new Instance(name, port, child, stderr);
    started.delete(handle);
    started.add(instance);
    child.once('exit', () => started.delete(instance));
    return instance;
  }

  /** SIGTERM; resolves with how it exited (SIGKILLed if it did not exit within 5 s). */
  stop(): Promise<Exit> {
    return terminate(this.child, 5000);
  }

  get(pathname: string, timeoutMs = 5000): Promise<Answer> {
    return httpRequest(this.port, 'GET', pathname, undefined, timeoutMs);
  }

  /** The webhook: `POST /api/revalidate` with the secret and a JSON body. */
  revalidate(body: Record<string, unknown>, secret: string): Promise<Answer> {
    return httpRequest(this.port, 'POST', '/api/revalidate', { body, secret }, 5000);
  }
}

export interface Answer {
  status: number;
  /** `x-isr-cache` */
  state: string;
  body: string;
}

/** One request on a connection of its own (no keep-alive left behind), bounded in time. */
function httpRequest(
  port: number,
  method: string,
  pathname: string,
  json: { body: Record<string, unknown>; secret: string } | undefined,
  timeoutMs: number,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = json ? JSON.stringify(json.body) : undefined;
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method,
        agent: false,
        headers: json
          ? {
              authorization: `Bearer ${json.secret}`,
              'content-type': 'application/json',
              'content-length': Buffer.byteLength(payload ?? ''),
            }
          : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          body += chunk;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            state: String(res.headers['x-isr-cache'] ?? ''),
            body,
          });
        });
        res.on('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy(
        new Error(`${method} ${pathname} on :${port} not answered within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    req.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    req.end(payload);
  });
}

/** A `redis-server` of the test's own, on a loopback port, nothing persisted. */
export class RedisServer {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort());
    started.add(server);
    await server.restart();
    return server;
  }

  /** (Re)starts the server on its port; resolves once it answers PING. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    this.child = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const failed = new Promise<never>((_resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) =>
        reject(new Error(`redis-server on ${this.port} exited (${code}): ${stderr}`)),
      );
    });
    failed.catch(() => {});
    const deadline = Date.now() + 10_000;
    while (!(await Promise.race([pong(this.port), failed]))) {
      if (Date.now() > deadline) throw new Error(`redis-server on ${this.port} did not start`);
      await sleep(20);
    }
  }

  /** SIGKILL: the server vanishes mid-command, as in a crash. */
  async kill(): Promise<void> {
    const child = this.child;
    if (child === undefined) return;
    const exit = exited(child);
    child.kill('SIGKILL');
    await exit;
  }

  async stop(): Promise<void> {
    started.delete(this);
    if (this.child !== undefined) await terminate(this.child, 3000);
  }
}

/** Whether a Redis answers PING on this port. */
function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let data = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      data += chunk.toString();
      if (data.includes('\r\n')) done(data.startsWith('+PONG'));
    });
  });
}
