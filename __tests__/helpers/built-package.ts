/**
 * The examples import `express-isr` as users do, which resolves to this repository's own
 * dist/ (Node's package self-reference). dist/ is shared by the whole run, and
 * `__tests__/e2e/packed-package.test.ts` rebuilds it (`npm pack` runs `rm -rf dist` first): the
 * code that builds it or starts a process that loads it holds one lock, a folder made with
 * `mkdir` (atomic), so that Jest workers running those files side by side never see it half
 * written.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { sleep } from './time';

const REPO = path.join(__dirname, '..', '..');
const LOCK = path.join(REPO, '.dist-lock');
const HOLDER = path.join(LOCK, 'pid');
/** Far longer than any holder takes (npm pack's build, a framework app's start-up). */
const WAIT_MS = 5 * 60_000;

/** Whether the process that made the lock still runs: a killed Jest worker leaves its lock. */
function holderAlive(): boolean {
  const pid = Number(readFileSync(HOLDER, 'utf8'));
  // Not written yet: the holder is between its mkdir and its write.
  if (!Number.isInteger(pid) || pid <= 0) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function withDistLock<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    try {
      mkdirSync(LOCK);
      writeFileSync(HOLDER, String(process.pid));
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    let alive = true;
    try {
      alive = holderAlive();
    } catch {
      // No pid file yet (as above), or the lock was just released.
    }
    if (!alive) rmSync(LOCK, { recursive: true, force: true });
    else if (Date.now() > deadline) throw new Error(`${LOCK} still held after 5 minutes`);
    else await sleep(100);
  }
  try {
    return await fn();
  } finally {
    rmSync(LOCK, { recursive: true, force: true });
  }
}

/** The newest modification time of the files under `dir`, in ms. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) {
      latest = Math.max(latest, statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
    }
  }
  return latest;
}

/**
 * `npm run build` unless dist/ is there and newer than lib/, as CI's build step leaves it:
 * the examples then run the code under test, not an old build. Call it under the lock.
 */
export async function buildPackageIfStale(): Promise<void> {
  const built = statSync(path.join(REPO, 'dist', 'index.mjs'), { throwIfNoEntry: false });
  if (built !== undefined && built.mtimeMs >= newest(path.join(REPO, 'lib'))) return;
  await promisify(execFile)('npm', ['run', 'build'], { cwd: REPO, timeout: 120_000 });
}
