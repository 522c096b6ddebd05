/**
 * A scenario's work that needs a process of its own:
 * `node [--expose-gc] --import tsx task-child.ts <scenario> <task>`. Receives the input over
 * IPC, runs `scenario.task(task, input)` and sends back the result. Exits if the parent dies.
 */
import { findScenario } from '../scenarios';

process.on('disconnect', () => process.exit(0));

process.once('message', (message: { type: 'run'; input: unknown }) => {
  const [name, task] = process.argv.slice(2);
  const scenario = findScenario(name);
  const run =
    scenario?.task === undefined
      ? Promise.reject(new Error(`no scenario named "${name}" with tasks`))
      : scenario.task(task, message.input);
  run.then(
    (result) => process.send?.({ type: 'result', result }, () => process.disconnect()),
    (error: unknown) => {
      const text = error instanceof Error ? (error.stack ?? error.message) : String(error);
      process.send?.({ type: 'error', message: text }, () => process.exit(1));
    },
  );
});
