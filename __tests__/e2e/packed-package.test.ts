// The package as users get it: `npm pack` (which runs the `prepack` build into dist/), then
// throwaway CommonJS, ESM and TypeScript projects that install the tarball and follow the
// quick start (`app.use(isr())`, `res.isr({ revalidate, tags })`). Covers the tarball's file
// list, `require` and `import` entry points, the shipped type declarations (checked against
// the oldest and the newest @types/node) and the Express `Response` augmentation.
import { execFile } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { withDistLock } from '../helpers/built-package';

const repo = join(__dirname, '..', '..');
const repoModules = join(repo, 'node_modules');
const HOOK_TIMEOUT = 120_000;

/**
 * The @types/node releases a TypeScript user may have next to this package: the line of the
 * oldest Node that `engines.node` accepts, and the newest major. Both are devDependencies of
 * this repo under npm aliases, so the test installs nothing. The aliases are kept out of
 * node_modules/@types on purpose: a tsconfig without `types` loads every package there as
 * globals, and three copies of Node's globals would clash.
 */
const TYPES_NODE = {
  oldest: 'types-node-oldest',
  newest: 'types-node-newest',
} as const;
type TypesNode = keyof typeof TYPES_NODE;
const typesNodeVersion = (which: TypesNode): string =>
  JSON.parse(readFileSync(join(repoModules, TYPES_NODE[which], 'package.json'), 'utf8')).version;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; never rejects (the exit code is part of the result). */
function run(file: string, args: string[], cwd: string, timeout = 60_000): Promise<Run> {
  // NODE_PATH would let a project see modules it did not install.
  const env = { ...process.env, NODE_PATH: '' };
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd, env, timeout, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

function must(result: Run, what: string): Run {
  if (result.code !== 0) {
    throw new Error(`${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

// --- the throwaway projects' sources -----------------------------------------------------

// Requests the page twice; prints the two x-isr-cache values, then the second body.
const SERVER_BODY = `
const app = express();
const cache = isr();
app.use(cache);
app.get('/', (_req, res) => {
  res.isr({ revalidate: 10, tags: ['posts'] });
  res.send('<h1>hi</h1>');
});
const server = app.listen(0, '127.0.0.1');
await once(server, 'listening');
const url = 'http://127.0.0.1:' + server.address().port + '/';
const first = await fetch(url);
await first.text();
await cache.idle();
const second = await fetch(url);
const body = await second.text();
console.log(first.headers.get('x-isr-cache'), second.headers.get('x-isr-cache'));
console.log(body);
await new Promise((resolve) => server.close(resolve));
await cache.close();
`;

const CJS_SERVER = `const { once } = require('node:events');
const express = require('express');
const { isr } = require('express-isr');

(async () => {${SERVER_BODY}})().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
`;

const ESM_SERVER = `import { once } from 'node:events';
import express from 'express';
import { isr } from 'express-isr';
${SERVER_BODY}`;

// `import` and `require` in one process must load one copy (one set of timers, one in-flight map).
const ESM_DUAL = `import { createRequire } from 'node:module';
import * as esm from 'express-isr';
const cjs = createRequire(import.meta.url)('express-isr');
console.log(['isr', 'MemoryStore', 'isRegeneration'].map((name) => typeof esm[name] + ':' + (esm[name] === cjs[name])).join(' '));
`;

// \`express-isr/purge\` the same way: each purger from \`import\` is the one from \`require\`.
const ESM_PURGE = `import { createRequire } from 'node:module';
import * as esm from 'express-isr/purge';
const cjs = createRequire(import.meta.url)('express-isr/purge');
console.log(['varnishPurge', 'cloudflarePurge', 'fastlyPurge', 'PurgeError'].map((name) => typeof esm[name] + ':' + (esm[name] === cjs[name])).join(' '));
`;

// The quick start plus the rest of the public surface a TypeScript user touches: the exported
// types, the webhook router, events with their payloads and the stats.
const TS_ROUTES = `
const app = express();
const store = new MemoryStore({ maxSize: 10_000_000 });
const purge: Purger = varnishPurge({ url: 'http://127.0.0.1:6081', attempts: 2 });
const options: IsrOptions = { store, revalidate: 60, cdnTags: 'xkey', onRevalidate: purge };
export const purgers: ((event: PurgeEvent) => Promise<void>)[] = [
  cloudflarePurge({ zoneId: 'z', token: 't', origins: ['https://www.example.com'] }),
  fastlyPurge({ serviceId: 's', token: 't', batchSize: 100 }),
];
const cache: IsrMiddleware = isr(options);
app.use(cache);
app.use('/api/revalidate', revalidateRouter(cache, { secret: 'a-long-enough-secret' }));
app.get('/posts', (req, res) => {
  const config: ResponseIsrConfig = { revalidate: 10, tags: ['posts'] };
  res.isr(config);
  res.isr({ revalidate: false });
  res.send(isRegeneration(req) ? '<h1>again</h1>' : '<h1>hi</h1>');
});
cache.on('regenerate:error', ({ key, error, nextRetryAt }) => {
  console.error(key, error.message, new Date(nextRetryAt));
});
const onRevalidate = (event: IsrEvents['revalidate']): void => {
  const mode: RevalidateMode = event.mode;
  console.log(mode, event.paths.length + event.tags.length);
};
cache.on('revalidate', onRevalidate);
cache.off('revalidate', onRevalidate);
export function hits(): number {
  const stats: IsrStats = cache.stats();
  return stats.requests.hit;
}
export async function stop(): Promise<void> {
  await cache.revalidateTag('posts', { mode: 'expire' });
  await cache.idle();
  await cache.close();
}
`;

// The same source is checked as an ES module (.mts: `import` types, dist/index.d.mts) and as
// CommonJS (.cts: `require` types, dist/index.d.ts).
const TS_APP = `import express from 'express';
import {
  type IsrEvents,
  type IsrMiddleware,
  type IsrOptions,
  type IsrStats,
  isRegeneration,
  isr,
  MemoryStore,
  type ResponseIsrConfig,
  type RevalidateMode,
  revalidateRouter,
} from 'express-isr';
import {
  cloudflarePurge,
  fastlyPurge,
  type PurgeEvent,
  type Purger,
  varnishPurge,
} from 'express-isr/purge';
${TS_ROUTES}`;

// Line 6 holds the only error tsc must report for this file.
const TS_WRONG = `import express from 'express';
import { isr } from 'express-isr';
const app = express();
app.use(isr());
app.get('/', (_req, res) => {
  res.isr({ revalidate: '10' });
  res.send('<h1>hi</h1>');
});
`;
const WRONG_LINE = 6;

const TSCONFIG = {
  // skipLibCheck false (tsc's default, spelled out): a strict user's tsc also checks the
  // package's .d.ts files, so a declaration that breaks with their @types/node breaks their build.
  compilerOptions: {
    module: 'nodenext',
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node'],
  },
  // `files`, not `include`: tsc fails loudly if one is missing instead of checking nothing.
  files: ['esm-app.mts', 'cjs-app.cts', 'wrong-type.mts'],
};

// --- setup -------------------------------------------------------------------------------

let work: string;
let tarball: string;
let packedFiles: string[];
let packedManifest: {
  main?: string;
  types?: string;
  dependencies?: Record<string, string>;
  exports?: unknown;
};

/**
 * A project in its own directory under os.tmpdir(), with the tarball unpacked into
 * node_modules/express-isr (exactly what npm places there) and symlinks, from this repo's
 * node_modules, for what npm would also install: the package's declared `dependencies` and
 * what the user installs themselves (`linked`). The registry is slow, so nothing is fetched.
 * The projects are deliberately NOT under the repo: Node and tsc resolve packages by walking
 * up the directory tree, and from inside the repo they would find every devDependency (keyv,
 * @types/debug, ...) and the repo's own name (self-reference to ./dist), hiding a missing
 * dependency that a real user would hit. Symlinked packages resolve their own dependencies
 * from their real path, so express and @types/express still work.
 */
async function project(
  name: string,
  linked: Record<string, string>,
  files: Record<string, string>,
) {
  const dir = join(work, name);
  const pkgDir = join(dir, 'node_modules', 'express-isr');
  mkdirSync(pkgDir, { recursive: true });
  must(await run('tar', ['-xzf', tarball, '-C', pkgDir, '--strip-components=1'], dir), 'tar -x');
  const links: Record<string, string> = { ...linked };
  for (const dep of Object.keys(packedManifest.dependencies ?? {})) links[dep] = dep;
  for (const [as, from] of Object.entries(links)) {
    const target = join(dir, 'node_modules', as);
    mkdirSync(dirname(target), { recursive: true });
    symlinkSync(join(repoModules, from), target, 'dir');
  }
  const manifest = { name: `${name}-app`, version: '1.0.0', private: true };
  writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest, null, 2));
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  return dir;
}

const dirs: Record<string, string> = {};

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'express-isr-packed-'));
  const packDir = join(work, 'pack');
  mkdirSync(packDir);
  // `prepack` runs `npm run build`, so this also proves the published build works from scratch.
  // It empties dist/ first: under the lock, so that no example test loads it meanwhile.
  must(
    await withDistLock(() => run('npm', ['pack', '--pack-destination', packDir], repo, 90_000)),
    'npm pack',
  );
  const tgz = readdirSync(packDir).filter((f) => f.endsWith('.tgz'));
  expect(tgz).toHaveLength(1);
  tarball = join(packDir, tgz[0]);
  packedFiles = must(await run('tar', ['-tzf', tarball], packDir), 'tar -t')
    .stdout.split('\n')
    .filter(Boolean);
  const manifest = await run('tar', ['-xzOf', tarball, 'package/package.json'], packDir);
  packedManifest = JSON.parse(must(manifest, 'tar -xO package.json').stdout);

  dirs.cjs = await project('cjs', { express: 'express' }, { 'server.js': CJS_SERVER });
  dirs.cjs4 = await project('cjs-express4', { express: 'express4' }, { 'server.js': CJS_SERVER });
  dirs.esm = await project(
    'esm',
    { express: 'express' },
    { 'server.mjs': ESM_SERVER, 'dual.mjs': ESM_DUAL, 'purge.mjs': ESM_PURGE },
  );
  for (const which of Object.keys(TYPES_NODE) as TypesNode[]) {
    dirs[`ts-${which}`] = await project(
      `ts-${which}`,
      { express: 'express', '@types/express': '@types/express', '@types/node': TYPES_NODE[which] },
      {
        'esm-app.mts': TS_APP,
        'cjs-app.cts': TS_APP,
        'wrong-type.mts': TS_WRONG,
        'tsconfig.json': JSON.stringify(TSCONFIG, null, 2),
      },
    );
  }
}, HOOK_TIMEOUT);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

// --- tests -------------------------------------------------------------------------------

describe('the npm tarball', () => {
  test('ships the CommonJS, ESM and type entry points and package.json', () => {
    expect(packedFiles).toEqual(
      expect.arrayContaining([
        'package/dist/index.js',
        'package/dist/index.mjs',
        'package/dist/index.d.ts',
        'package/package.json',
      ]),
    );
  });

  test('ships no sources, tests, CI files or node_modules', () => {
    const unwanted = packedFiles.filter(
      (f) =>
        !f.startsWith('package/') ||
        /^package\/(lib|__tests__|\.ci)\//.test(f) ||
        f.split('/').includes('node_modules'),
    );
    expect(unwanted).toEqual([]);
  });

  test('every file named by main, types and exports is in the tarball', () => {
    const targets: string[] = [];
    const collect = (value: unknown): void => {
      if (typeof value === 'string') targets.push(value);
      else if (value && typeof value === 'object') Object.values(value).forEach(collect);
    };
    collect([packedManifest.main, packedManifest.types, packedManifest.exports]);
    expect(targets.length).toBeGreaterThan(0);
    const missing = targets.filter((t) => !packedFiles.includes(join('package', t)));
    expect(missing).toEqual([]);
  });
});

describe('installed from the tarball', () => {
  test("CommonJS: require('express-isr') serves MISS then HIT (express 5)", async () => {
    const result = await run(process.execPath, ['server.js'], dirs.cjs, 30_000);
    expect(result).toMatchObject({ code: 0, stdout: 'MISS HIT\n<h1>hi</h1>\n' });
  });

  test("CommonJS: require('express-isr') serves MISS then HIT (express 4)", async () => {
    const result = await run(process.execPath, ['server.js'], dirs.cjs4, 30_000);
    expect(result).toMatchObject({ code: 0, stdout: 'MISS HIT\n<h1>hi</h1>\n' });
  });

  test("ESM: import { isr } from 'express-isr' serves MISS then HIT", async () => {
    const result = await run(process.execPath, ['server.mjs'], dirs.esm, 30_000);
    expect(result).toMatchObject({ code: 0, stdout: 'MISS HIT\n<h1>hi</h1>\n' });
  });

  test('ESM: import and require in one process get the same exports (one copy loaded)', async () => {
    const result = await run(process.execPath, ['dual.mjs'], dirs.esm, 30_000);
    expect(result).toMatchObject({
      code: 0,
      stdout: 'function:true function:true function:true\n',
    });
  });

  test('express-isr/purge: import and require get the same purgers (one copy loaded)', async () => {
    const result = await run(process.execPath, ['purge.mjs'], dirs.esm, 30_000);
    expect(result).toMatchObject({
      code: 0,
      stdout: 'function:true function:true function:true function:true\n',
    });
  });

  describe.each(
    (Object.keys(TYPES_NODE) as TypesNode[]).map((which) => [which, typesNodeVersion(which)]),
  )(
    'TypeScript (strict, skipLibCheck false, module nodenext, .mts and .cts) with the %s @types/node, %s',
    (which) => {
      let diagnostics: string[];
      let tscOutput: string;
      let programFiles: string[];

      beforeAll(async () => {
        const tsc = join(repoModules, '.bin', 'tsc');
        const args = ['-p', 'tsconfig.json', '--pretty', 'false', '--listFiles'];
        const result = await run(tsc, args, dirs[`ts-${which}`], 90_000);
        const lines = `${result.stdout}${result.stderr}`.split('\n');
        // --listFiles: one absolute path a line (symlinks resolved, as tsc resolves them).
        programFiles = lines.filter((l) => l.startsWith('/'));
        tscOutput = lines.filter((l) => !l.startsWith('/')).join('\n');
        // One diagnostic per unindented line: `file(line,col): error TSxxxx: message`.
        diagnostics = lines.filter((l) => /error TS\d+:/.test(l) && !/^\s/.test(l));
      }, HOOK_TIMEOUT);

      test('tsc used that @types/node and no other copy', () => {
        const copies = [...Object.values(TYPES_NODE), '@types/node'].map((name) =>
          realpathSync(join(repoModules, name)),
        );
        const used = copies.filter((copy) => programFiles.some((f) => f.startsWith(`${copy}/`)));
        expect(used).toEqual([realpathSync(join(repoModules, TYPES_NODE[which]))]);
      });

      test("the package's declarations type-check", () => {
        const inPackage = diagnostics.filter((d) => d.startsWith('node_modules/'));
        expect(inPackage).toEqual([]);
      });

      test('an app using the API and its types type-checks: res.isr() is typed on Response', () => {
        const elsewhere = diagnostics.filter(
          (d) => !d.startsWith('wrong-type.mts(') && !d.startsWith('node_modules/'),
        );
        expect(elsewhere).toEqual([]);
      });

      test("res.isr({ revalidate: '10' }) is a type error", () => {
        const wrong = diagnostics.filter((d) => d.startsWith('wrong-type.mts('));
        expect({ wrong, tscOutput }).toMatchObject({
          wrong: [
            expect.stringMatching(
              new RegExp(`^wrong-type\\.mts\\(${WRONG_LINE},\\d+\\): error TS2322:`),
            ),
          ],
        });
      });
    },
  );
});
