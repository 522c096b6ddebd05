/**
 * Child processes (servers, load generators, in-process tasks): TypeScript run with tsx, or a
 * program such as `wrk`, optionally pinned to a CPU with `taskset -c` (which execs the
 * command, so the child's pid is the program's own).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

export const REPO_ROOT = path.resolve(__dirname, '..', '..');

const running = new Set<ChildProcess>();

/** Kills every child still running (by its own pid): used when the run is interrupted. */
export function killChildren(): void {
  for (const child of running) child.kill('SIGKILL');
}

/**
 * Runs a TypeScript file with tsx and an IPC channel; `nodeArgs` go before it (e.g.
 * `--expose-gc`, `--cpu-prof`).
 */
export function spawnTs(
  script: string,
  args: string[],
  cpu: string | undefined,
  nodeArgs: string[] = [],
): ChildProcess {
  return spawnPinned([process.execPath, ...nodeArgs, '--import', 'tsx', script, ...args], cpu, [
    'ignore',
    'inherit',
    'inherit',
    'ipc',
  ]);
}

/** Runs any program (`wrk`), its stdout piped to the caller. */
export function spawnProgram(command: string[], cpu: string | undefined): ChildProcess {
  return spawnPinned(command, cpu, ['ignore', 'pipe', 'inherit']);
}

function spawnPinned(
  program: string[],
  cpu: string | undefined,
  stdio: ('ignore' | 'inherit' | 'pipe' | 'ipc')[],
): ChildProcess {
  const [command, ...rest] = cpu === undefined ? program : ['taskset', '-c', cpu, ...program];
  const child = spawn(command, rest, { cwd: REPO_ROOT, stdio });
  running.add(child);
  // Without a listener, a failed spawn or a send to a dead child would crash the runner;
  // `nextMessage` turns these into rejections where someone is waiting.
  child.on('error', () => {});
  child.once('exit', () => running.delete(child));
  return child;
}

/** Resolves with the first IPC message of `type`; rejects if the child exits first or on timeout. */
export function nextMessage<T extends { type: string }>(
  child: ChildProcess,
  type: T['type'],
  timeoutMs: number,
  what: string,
): Promise<T> {
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) {
      // Already gone (killed on Ctrl-C): its 'exit' will not fire again.
      reject(new Error(`${what}: child exited (${child.signalCode ?? child.exitCode})`));
      return;
    }
    const done = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const onMessage = (message: { type: string; message?: string }) => {
      if (message.type === type) {
        done();
        resolve(message as T);
      } else if (message.type === 'error') {
        done();
        reject(new Error(`${what}: ${message.message}`));
      }
    };
    const onExit = (code: number | null, signal: string | null) => {
      done();
      reject(new Error(`${what}: child exited (${signal ?? code}) before sending "${type}"`));
    };
    const onError = (error: Error) => {
      done();
      reject(new Error(`${what}: ${error.message}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what}: no "${type}" within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('message', onMessage);
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Waits for the child to exit; kills it (by its own pid) if it has not after `graceMs`. */
export function waitForExit(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
