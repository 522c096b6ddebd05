/**
 * Runs README code blocks as written: the first ```ts block after a heading, its imports
 * resolved from this project (`express-isr` is `lib/`). `readmeExample` loads it as a module
 * in this process; `readmeScript` writes it as a script for a process of its own.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

/** The first ```ts block after `heading` (any text of the README, e.g. a bold paragraph title). */
export function readmeBlock(heading: string): string {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(heading);
  if (at === -1) throw new Error(`README has no ${JSON.stringify(heading)}`);
  const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
  if (code === undefined) throw new Error(`README has no ts block after ${heading}`);
  return code;
}

/** `express-isr` becomes `lib/`; other packages their resolved path (the file is in a temp dir). */
function resolveImports(code: string): string {
  return code
    .replace(/from 'express-isr'/g, `from ${JSON.stringify(path.join(ROOT, 'lib'))}`)
    .replace(
      /from '([^'.][^']*)'/g,
      (_m, name: string) => `from ${JSON.stringify(require.resolve(name))}`,
    );
}

function writeTemp(source: string): { file: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'isr-readme-'));
  const file = path.join(dir, 'example.ts');
  writeFileSync(file, source);
  return { file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function readmeExample<T>(
  heading: string,
  exported: string[],
): { module: T; remove: () => void } {
  const code = readmeBlock(heading);
  const listen = /^app\.listen\(.*\);?$/m;
  if (!listen.test(code))
    throw new Error(`the example after ${heading} does not end in app.listen`);
  const { file, remove } = writeTemp(
    resolveImports(code).replace(listen, `export { ${exported.join(', ')} };`),
  );
  return { module: require(file) as T, remove };
}

/**
 * The block after `heading` as a script file, with `edits` made to it: each `[text, with]`
 * must occur exactly once (so a README change that moves it fails here, not silently), and
 * `dropLines`, if given, removes every line it matches. `prelude` goes first (imports are
 * evaluated in order, so it runs before the example's code).
 */
export function readmeScript(
  heading: string,
  edits: readonly (readonly [string, string])[],
  options: { dropLines?: RegExp; prelude?: string } = {},
): { file: string; source: string; remove: () => void } {
  let code = readmeBlock(heading);
  for (const [text, replacement] of edits) {
    const count = code.split(text).length - 1;
    if (count !== 1)
      throw new Error(`${JSON.stringify(text)} occurs ${count} times after ${heading}, not once`);
    code = code.replace(text, () => replacement);
  }
  const { dropLines } = options;
  if (dropLines !== undefined)
    code = code
      .split('\n')
      .filter((line) => !dropLines.test(line))
      .join('\n');
  const source = `${options.prelude ?? ''}${resolveImports(code)}`;
  return { ...writeTemp(source), source };
}
