/**
 * Every benchmark scenario, in the order `npm run bench` runs them. To add one: write
 * `bench/scenarios/<group>-<name>.ts` exporting a `Scenario` and list it here.
 */
import type { Scenario } from '../lib/scenario';
import { coldHerd } from './cold-herd';
import { fastPath } from './hits-fast-path';
import { middlewareVsExpress } from './hits-middleware-vs-express';
import { stale } from './hits-stale';
import { memoryFill } from './memory-fill';
import { sharedStoreEviction } from './shared-store-eviction';
import { sharedStoreHits } from './shared-store-hits';
import { hitCost } from './tag-clocks-hit-cost';
import { revalidateScale } from './tag-clocks-revalidate-scale';

export const scenarios: readonly Scenario[] = [
  revalidateScale,
  hitCost,
  middlewareVsExpress,
  fastPath,
  stale,
  sharedStoreHits,
  sharedStoreEviction,
  memoryFill,
  coldHerd,
];

export function findScenario(name: string | undefined): Scenario | undefined {
  return scenarios.find((s) => s.name === name);
}

/**
 * The scenarios `names` select: an exact name (`tag-clocks/hit-cost`) or a group
 * (`tag-clocks`); all of them when `names` is empty. Throws on a name that selects nothing.
 */
export function selectScenarios(names: readonly string[]): Scenario[] {
  if (names.length === 0) return [...scenarios];
  const unknown = names.filter(
    (n) => !scenarios.some((s) => s.name === n || s.name.startsWith(`${n}/`)),
  );
  if (unknown.length > 0) {
    throw new Error(
      `unknown scenario ${unknown.map((n) => `"${n}"`).join(', ')}; known: ${scenarios.map((s) => s.name).join(', ')}`,
    );
  }
  return scenarios.filter((s) => names.some((n) => s.name === n || s.name.startsWith(`${n}/`)));
}
