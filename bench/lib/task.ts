/**
 * Runs one of a scenario's tasks (`Scenario.task`) in a child process of its own, pinned to
 * the server CPU or the load CPU: a clean heap to measure memory in, `--expose-gc`, or a
 * client that must not share a core with the server it measures.
 */
import path from 'node:path';
import { nextMessage, spawnTs, waitForExit } from './child';
import { onCleanup } from './cleanup';
import type { Context } from './scenario';
import { profileArgs } from './server';

export interface TaskOptions {
  /** Which pinned CPU the child gets (when pinning is used). @default 'server' */
  cpu?: 'server' | 'load';
  /** Flags for node, e.g. `['--expose-gc']`. */
  nodeArgs?: string[];
  /** How long the task may take. @default 120 s */
  timeoutMs?: number;
}

export async function runTask<T>(
  context: Context,
  task: string,
  input: unknown,
  options: TaskOptions = {},
): Promise<T> {
  const { scenario, settings } = context;
  const { pinning } = settings;
  const cpu = pinning.used ? (options.cpu === 'load' ? pinning.load : pinning.server) : undefined;
  const nodeArgs = [...(options.nodeArgs ?? [])];
  if (options.cpu !== 'load') nodeArgs.push(...profileArgs(settings, `${scenario.name}--${task}`));
  const child = spawnTs(
    path.join(__dirname, 'task-child.ts'),
    [scenario.name, task],
    cpu,
    nodeArgs,
  );
  const unregister = onCleanup(() => {
    child.kill('SIGKILL');
    return waitForExit(child, 1000);
  });
  try {
    const result = nextMessage<{ type: 'result'; result: T }>(
      child,
      'result',
      options.timeoutMs ?? 120_000,
      `${scenario.name} task ${task}`,
    );
    if (child.connected) child.send({ type: 'run', input });
    return (await result).result;
  } finally {
    await waitForExit(child, settings.cpuProfileDir ? 30_000 : 5000);
    unregister();
  }
}
