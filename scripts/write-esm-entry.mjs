// Writes the ESM entries (`express-isr` and `express-isr/purge`) next to the CommonJS build.
// Each re-exports its CommonJS module instead of compiling a second copy, so `import` and
// `require` share one instance (no dual-package hazard: one in-flight map, one set of timers).
import { writeFileSync } from 'node:fs';

const entries = {
  '../dist/index': ['isr', 'revalidateRouter', 'MemoryStore', 'isRegeneration'],
  '../dist/purge/index': ['varnishPurge', 'cloudflarePurge', 'fastlyPurge', 'PurgeError'],
};
for (const [entry, names] of Object.entries(entries)) {
  writeFileSync(
    new URL(`${entry}.mjs`, import.meta.url),
    `import cjs from './index.js';\nexport const { ${names.join(', ')} } = cjs;\n`,
  );
  writeFileSync(new URL(`${entry}.d.mts`, import.meta.url), `export * from './index.js';\n`);
}
