// Writes the ESM entry next to the CommonJS build. It re-exports the CommonJS module
// instead of compiling a second copy, so `import` and `require` share one instance
// (no dual-package hazard: one in-flight map, one set of timers).
import { writeFileSync } from 'node:fs';

const names = ['isr', 'revalidateRouter', 'MemoryStore', 'isRegeneration'];
writeFileSync(
  new URL('../dist/index.mjs', import.meta.url),
  `import cjs from './index.js';\nexport const { ${names.join(', ')} } = cjs;\n`,
);
writeFileSync(new URL('../dist/index.d.mts', import.meta.url), `export * from './index.js';\n`);
