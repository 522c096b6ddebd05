/**
 * `node --import tsx bench/profile-top.ts <file.cpuprofile | directory> [count]`: the
 * functions with the most self time in a V8 CPU profile (what `node --cpu-prof` writes;
 * `BENCH_CPU_PROF=<dir> npm run bench -- <scenario>` gives each server child a directory of
 * profiles, one per thread). Given a directory, it reads the busiest profile in it: the main
 * thread's. Self time is summed from the sample intervals, per function (name, file and
 * line), across every call path. Last come the functions of the library (`lib/`) by
 * inclusive time (their own time plus their callees'), to see what a hit path costs in all.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const REPO = path.resolve(__dirname, '..');

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

function main(): void {
  const [file, countText = '15'] = process.argv.slice(2);
  if (file === undefined) {
    console.error('usage: node --import tsx bench/profile-top.ts <file.cpuprofile> [count]');
    process.exitCode = 2;
    return;
  }
  const files = statSync(file).isDirectory()
    ? readdirSync(file)
        .filter((name) => name.endsWith('.cpuprofile'))
        .map((name) => path.join(file, name))
    : [file];
  const summaries = files.map(summarize).sort((a, b) => b.busy - a.busy);
  if (summaries.length === 0) throw new Error(`no .cpuprofile in ${file}`);
  const { self, total, busy, from } = summaries[0];
  console.log(
    `${path.relative(process.cwd(), from)}: ${(total / 1000).toFixed(0)} ms sampled, ${(busy / 1000).toFixed(0)} ms busy (not idle)`,
  );
  console.log('self ms   % busy  function');
  const top = [...self.entries()]
    .filter(([key]) => key !== '(idle)')
    .sort((a, b) => b[1] - a[1])
    .slice(0, Number(countText));
  const line = (micros: number, what: string) =>
    console.log(
      `${(micros / 1000).toFixed(0).padStart(7)}  ${((100 * micros) / Math.max(1, busy)).toFixed(1).padStart(6)}%  ${what}`,
    );
  for (const [key, micros] of top) line(micros, key);
  // The same time by where the code lives: a package, a node: module, a file of lib/.
  const bySource = new Map<string, number>();
  for (const [key, micros] of self) {
    if (key === '(idle)') continue;
    const source = sourceOf(key);
    bySource.set(source, (bySource.get(source) ?? 0) + micros);
  }
  console.log('\nself ms   % busy  by source');
  for (const [source, micros] of [...bySource.entries()].sort((a, b) => b[1] - a[1]).slice(0, 12))
    line(micros, source);
  console.log('\nincl ms   % busy  lib/ functions, inclusive of their callees');
  for (const [key, micros] of [...summaries[0].inclusive.entries()]
    .filter(([key]) => sourceOf(key).startsWith('lib/'))
    .sort((a, b) => b[1] - a[1])
    .slice(0, 12))
    line(micros, key);
}

/** `express`, `node:_http_outgoing`, `lib/request/replay.ts`, `(native)`, `(garbage collector)`… */
function sourceOf(label: string): string {
  const match = / \(([^()]*?)(?::\d+)?\)$/.exec(label);
  if (match === null) return label.startsWith('(') ? label : '(native)';
  const file = match[1];
  if (file.startsWith('node:') || file.startsWith('lib/') || file.startsWith('bench/')) return file;
  // A package: `express`, `@keyv/redis`.
  const parts = file.split('/');
  return file.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
}

interface Summary {
  from: string;
  /** Self time (µs) per function. */
  self: Map<string, number>;
  /** Inclusive time (µs) per function: samples with the function anywhere on the stack. */
  inclusive: Map<string, number>;
  total: number;
  busy: number;
}

function summarize(file: string): Summary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parentOf.set(child, n.id);
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  // timeDeltas[i] is the time before sample i; charge it to the function sampled.
  for (let i = 0; i < profile.samples.length; i += 1) {
    const node = byId.get(profile.samples[i]);
    const micros = profile.timeDeltas[i] ?? 0;
    if (node === undefined || micros <= 0) continue;
    total += micros;
    const key = label(node);
    self.set(key, (self.get(key) ?? 0) + micros);
    // Each function once per sample, however deep it recurses.
    const onStack = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parentOf.get(id)) {
      const frame = byId.get(id);
      if (frame !== undefined) onStack.add(label(frame));
    }
    for (const k of onStack) inclusive.set(k, (inclusive.get(k) ?? 0) + micros);
  }
  return { from: file, self, inclusive, total, busy: total - (self.get('(idle)') ?? 0) };
}

/** `name (file:line)`, the file relative to node_modules or the repository when possible. */
function label(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName || '(anonymous)';
  if (url === '') return name;
  const file = url.replace(/^file:\/\//, '');
  const inPackage = file.lastIndexOf('/node_modules/');
  const short =
    inPackage !== -1
      ? file.slice(inPackage + '/node_modules/'.length)
      : file.startsWith(`${REPO}/`)
        ? file.slice(REPO.length + 1)
        : file;
  // tsx compiles .ts files: V8's line is one of the compiled code, meaningless in the source.
  return short.endsWith('.ts') ? `${name} (${short})` : `${name} (${short}:${lineNumber + 1})`;
}

main();
