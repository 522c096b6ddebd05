import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sleep } from './time';

/**
 * The demo blog as a user starts it (`npm run demo` = `node --import tsx demo-app/server.ts`),
 * in a real child process with its own data directory, on a free port, always on the memory
 * store (REDIS_URL is removed from its environment: the demo's Redis keys are not namespaced
 * per test). `stop()` sends SIGTERM (SIGKILL after 5 s) and removes the data directory.
 */
export interface DemoProcess {
  /** `http://127.0.0.1:<port>` */
  url: string;
  secret: string;
  /** The CMS's JSON file. */
  postsFile: string;
  /** What start-up prerendered, e.g. `{ path: '/', outcome: 'stored' }`. */
  prerendered: { path: string; outcome: string }[];
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

const REPO = path.join(__dirname, '..', '..');

export async function startDemoProcess(env: Record<string, string> = {}): Promise<DemoProcess> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'express-isr-demo-'));
  const secret = randomBytes(16).toString('hex');
  const { REDIS_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, ['--import', 'tsx', 'demo-app/server.ts'], {
    cwd: REPO,
    env: {
      ...inherited,
      PORT: '0',
      DATA_DIR: dataDir,
      ISR_SECRET: secret,
      CMS_LATENCY_MS: '30',
      DEBUG: '',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    output += chunk.toString();
  });
  const stop = async () => {
    await terminate(child);
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`demo not up after 20 s:\n${output}`)),
        20_000,
      );
      const check = () => {
        const port = /express-isr demo on http:\/\/localhost:(\d+)/.exec(output)?.[1];
        if (port === undefined) return;
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve(`http://127.0.0.1:${port}`);
      };
      child.stdout?.on('data', check);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`demo exited (${code ?? signal}) before listening:\n${output}`));
      });
    });
    const line = /prerendered in \d+ ms: (.*)/.exec(output)?.[1] ?? '';
    const prerendered = line
      .split(', ')
      .filter(Boolean)
      .map((item) => {
        const [p, outcome] = item.split(' ');
        return { path: p, outcome };
      });
    return {
      url,
      secret,
      postsFile: path.join(dataDir, 'posts.json'),
      prerendered,
      output: () => output,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}

/** Edits the CMS's file behind the site's back, as the README's `sed` does (atomically). */
export function editPostsFile(file: string, edit: (posts: Record<string, any>[]) => void): void {
  const data = JSON.parse(readFileSync(file, 'utf8'));
  edit(data.posts);
  writeFileSync(`${file}.test.tmp`, JSON.stringify(data, null, 2));
  renameSync(`${file}.test.tmp`, file);
}

export interface Page {
  status: number;
  /** `x-isr-cache` */
  state: string | null;
  headers: Headers;
  body: string;
  /** The footer's generation time (ms), baked into the HTML by the render. */
  generatedAt: number | undefined;
  /** The `<h1>`. */
  title: string | undefined;
}

export async function getPage(url: string, init?: RequestInit): Promise<Page> {
  const response = await fetch(url, { redirect: 'manual', ...init });
  const body = await response.text();
  // The footer's first <time>; the page above it has <time>s of its own (post dates).
  const generated = /<footer id="isr-footer"[^>]*>[\s\S]*?<time datetime="([^"]+)"/.exec(body)?.[1];
  return {
    status: response.status,
    state: response.headers.get('x-isr-cache'),
    headers: response.headers,
    body,
    generatedAt: generated === undefined ? undefined : Date.parse(generated),
    title: /<h1>([^<]*)<\/h1>/.exec(body)?.[1],
  };
}

/** Requests `url` every 50 ms until `done(page)`, for at most `withinMs`; returns the last page. */
export async function pollPage(
  url: string,
  done: (page: Page) => boolean,
  withinMs: number,
): Promise<Page> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const page = await getPage(url);
    if (done(page) || Date.now() >= deadline) return page;
    await sleep(50);
  }
}
