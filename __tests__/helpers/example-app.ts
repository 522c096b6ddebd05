/**
 * The apps under examples/, as the framework tests run them: built by the framework's own CLI
 * (from node_modules/.bin, no network), then started as processes of their own, either
 * through `__tests__/fixtures/example-app.mjs` (the example's `createApp` with a clock the
 * test moves) or exactly as the example's README says (`node examples/<name>/server.mjs`).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import http, { type IncomingHttpHeaders } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildPackageIfStale, withDistLock } from './built-package';
import { sleep } from './time';

const REPO = path.join(__dirname, '..', '..');
export const EXAMPLES = path.join(REPO, 'examples');

/** A framework build on 2 cores takes 5–15 s; the first one also warms the disk cache. */
export const BUILD_TIMEOUT = 180_000;

/** The secret the examples read from ISR_SECRET. */
export const SECRET = randomBytes(16).toString('hex');

/** What every example process gets: no telemetry (there is no network), production React. */
function exampleEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NODE_ENV: 'production',
    ISR_SECRET: SECRET,
    ASTRO_TELEMETRY_DISABLED: '1',
    DEBUG: '',
    ...extra,
  };
}

/**
 * Runs `node_modules/.bin/<bin> <args>` from the repository's folder, and builds dist/ if it
 * is stale, since every example loads it.
 */
export async function buildExample(bin: string, args: string[]): Promise<void> {
  await withDistLock(buildPackageIfStale);
  await new Promise<void>((resolve, reject) => {
    execFile(
      path.join(REPO, 'node_modules', '.bin', bin),
      args,
      { cwd: REPO, env: exampleEnv(), timeout: BUILD_TIMEOUT - 30_000, maxBuffer: 16 << 20 },
      (error, stdout, stderr) =>
        error
          ? reject(new Error(`${bin} ${args.join(' ')} failed:\n${stdout}\n${stderr}`))
          : resolve(),
    );
  });
}

export interface ExampleApp {
  url(pathname: string): string;
  /** The example's stand-in CMS, a copy in a temp folder: edit it with `editPosts`. */
  postsFile: string;
  /** Moves the app's clock (isr's `now`). */
  advance(seconds: number): Promise<void>;
  /** `cache.idle()` in the app. */
  idle(): Promise<void>;
  /** The URLs of the pages in the app's cache (`cache.entries()`). */
  storedUrls(): Promise<string[]>;
  output(): string;
  stop(): Promise<void>;
}

/** Starts `examples/<name>/server.mjs`'s `createApp` with a test clock, on a free port. */
export async function startExampleApp(name: string): Promise<ExampleApp> {
  const dir = mkdtempSync(path.join(tmpdir(), `isr-example-${name}-`));
  const postsFile = path.join(dir, 'posts.json');
  copyFileSync(path.join(EXAMPLES, name, 'posts.json'), postsFile);
  const fixture = path.join(__dirname, '..', 'fixtures', 'example-app.mjs');
  const server = path.join(EXAMPLES, name, 'server.mjs');
  let child: ChildProcess | undefined;
  let output = { text: '' };
  const stop = async () => {
    if (child !== undefined) await terminate(child);
    rmSync(dir, { recursive: true, force: true });
  };

  let nextId = 0;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  const onMessage = (message: { id?: number; result?: unknown; error?: string }) => {
    const waiting = message.id === undefined ? undefined : pending.get(message.id);
    if (waiting === undefined) return;
    pending.delete(message.id!);
    if (message.error === undefined) waiting.resolve(message.result);
    else waiting.reject(new Error(message.error));
  };
  const call = (command: string, args: object = {}) =>
    new Promise<any>((resolve, reject) => {
      nextId += 1;
      pending.set(nextId, { resolve, reject });
      child!.send({ id: nextId, command, ...args });
    });

  try {
    // Held until the app has loaded dist/ and listens.
    const port = await withDistLock(() => {
      child = spawn(process.execPath, [fixture, server, postsFile], {
        cwd: REPO,
        env: exampleEnv(),
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      });
      child.on('message', onMessage);
      output = collectOutput(child);
      child.once('exit', () => {
        for (const waiting of pending.values())
          waiting.reject(new Error(`exited:\n${output.text}`));
        pending.clear();
      });
      return listening(child, output, (message) => (message as { port?: number }).port);
    });
    return {
      url: (pathname) => `http://127.0.0.1:${port}${pathname}`,
      postsFile,
      advance: (seconds) => call('advance', { seconds }),
      idle: () => call('idle'),
      storedUrls: async () =>
        ((await call('entries')) as { entries: { url: string }[] }).entries.map((e) => e.url),
      output: () => output.text,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Runs `node examples/<name>/server.mjs` as its README says, with `PORT=0`. */
export async function runExampleAsDocumented(
  name: string,
): Promise<{ url(pathname: string): string; output(): string; stop(): Promise<void> }> {
  let child: ChildProcess | undefined;
  let output = { text: '' };
  const stop = async () => {
    if (child !== undefined) await terminate(child);
  };
  try {
    // Held until the app has loaded dist/ and listens.
    const port = await withDistLock(() => {
      child = spawn(process.execPath, [path.join('examples', name, 'server.mjs')], {
        cwd: REPO,
        env: exampleEnv({ PORT: '0' }),
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      output = collectOutput(child);
      return listening(child, output, () => /on http:\/\/localhost:(\d+)/.exec(output.text)?.[1]);
    });
    return {
      url: (pathname) => `http://127.0.0.1:${port}${pathname}`,
      output: () => output.text,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function collectOutput(child: ChildProcess): { text: string } {
  const output = { text: '' };
  const append = (chunk: Buffer) => {
    output.text += chunk.toString();
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  return output;
}

/** Resolves with the port once `portOf` finds it in a message or in the output. */
function listening(
  child: ChildProcess,
  output: { text: string },
  portOf: (message: unknown) => number | string | undefined,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (message?: unknown) => {
      const port = portOf(message);
      if (port === undefined) return;
      done();
      resolve(Number(port));
    };
    const exited = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`exited (${code ?? signal}) before listening:\n${output.text}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`not listening after 20 s:\n${output.text}`));
    }, 20_000);
    const onData = () => check();
    const done = () => {
      clearTimeout(timer);
      child.off('message', check);
      child.stdout?.off('data', onData);
      child.off('exit', exited);
    };
    child.on('message', check);
    child.stdout?.on('data', onData);
    child.once('exit', exited);
  });
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Edits the example's CMS behind the site's back (atomically, as a CMS would publish). */
export function editPosts(file: string, edit: (posts: { slug: string; title: string }[]) => void) {
  const posts = JSON.parse(readFileSync(file, 'utf8'));
  edit(posts);
  writeFileSync(`${file}.tmp`, JSON.stringify(posts, null, 2));
  renameSync(`${file}.tmp`, file);
}

export interface Fetched {
  status: number;
  headers: IncomingHttpHeaders;
  /** The bytes as they came (no `Accept-Encoding` is sent, so never compressed). */
  body: Buffer;
  text: string;
  /** Each piece as it arrived: more than one when the response streamed. */
  chunks: Buffer[];
}

/** A GET (or POST) with only the headers given: no `Accept-Encoding`, no keep-alive. */
export function get(
  url: string,
  headers: Record<string, string> = {},
  method = 'GET',
  body?: string,
): Promise<Fetched> {
  return new Promise((resolve, reject) => {
    const request = http.request(url, { method, headers, agent: false }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => {
        const all = Buffer.concat(chunks);
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: all,
          text: all.toString('utf8'),
          chunks,
        });
      });
      response.on('error', reject);
    });
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * GETs `url` until it is a HIT (at most a second), for a process without a test clock nor
 * `cache.idle()`: a page is stored just after the response that rendered it ends, so a
 * request right after a MISS may be one too.
 */
export async function getOnceStored(url: string): Promise<Fetched> {
  let response = await get(url);
  for (let attempt = 0; attempt < 50 && response.headers['x-isr-cache'] !== 'HIT'; attempt += 1) {
    await sleep(20);
    response = await get(url);
  }
  return response;
}

/** The webhook as a CMS calls it: `POST /api/revalidate` with the secret and a JSON body. */
export function revalidate(app: ExampleApp, body: object): Promise<Fetched> {
  return get(
    app.url('/api/revalidate'),
    { authorization: `Bearer ${SECRET}`, 'content-type': 'application/json' },
    'POST',
    JSON.stringify(body),
  );
}
