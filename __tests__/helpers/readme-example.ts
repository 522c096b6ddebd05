/**
 * Runs a README code block as written: the first ```ts block after `heading`, as a module
 * whose imports resolve from this project (`express-isr` is `lib/`) and whose last line,
 * `app.listen(…)`, exports what the test needs instead of listening.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

export function readmeExample<T>(
  heading: string,
  exported: string[],
): { module: T; remove: () => void } {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(heading);
  if (at === -1) throw new Error(`README has no ${JSON.stringify(heading)}`);
  const code = /```ts\n([\s\S]*?)```/.exec(readme.slice(at))?.[1];
  if (code === undefined) throw new Error(`README has no ts block after ${heading}`);
  const listen = /^app\.listen\(.*\);?$/m;
  if (!listen.test(code))
    throw new Error(`the example after ${heading} does not end in app.listen`);
  const source = code
    .replace(/from 'express-isr'/g, `from ${JSON.stringify(path.join(ROOT, 'lib'))}`)
    .replace(
      /from '([^'.][^']*)'/g,
      (_m, name: string) => `from ${JSON.stringify(require.resolve(name))}`,
    )
    .replace(listen, `export { ${exported.join(', ')} };`);
  const dir = mkdtempSync(path.join(tmpdir(), 'isr-readme-'));
  const file = path.join(dir, 'example.ts');
  writeFileSync(file, source);
  return {
    module: require(file) as T,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
