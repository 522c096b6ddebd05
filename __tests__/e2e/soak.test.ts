/**
 * Soak: two app processes on one Redis, a few thousand distinct pages,
 * random GETs on both, random invalidations (webhook: path, tag, layout; stale, expire,
 * regenerate) with content version bumps — see soak/soak-run.ts for what is checked on every
 * response. Short in `npm test` (SOAK_SECONDS, default 8 s); `npm run soak` runs it for 60 s.
 * Needs Redis at REDIS_URL (default 127.0.0.1:6379); it uses a namespace of its own and
 * deletes it afterwards.
 */
import { describeSoak, runSoak, type SoakResult } from './soak/soak-run';

const SECONDS = Number(process.env.SOAK_SECONDS ?? 8);
const PAGES = Number(process.env.SOAK_PAGES ?? 2000);

const STATES = ['MISS', 'HIT', 'STALE'];
const ENCODINGS = ['identity', 'br', 'gzip'];
const MODES = ['stale', 'expire', 'regenerate'];

function covers(result: SoakResult): boolean {
  return (
    STATES.every((state) => (result.states[state] ?? 0) > 0) &&
    ENCODINGS.every((encoding) => (result.encodings[encoding] ?? 0) > 0) &&
    MODES.every((mode) => Object.keys(result.invalidations).some((l) => l.endsWith(`/${mode}`)))
  );
}

test(
  `soak: ${SECONDS} s, ${PAGES} pages, 2 instances on Redis — every response is its own page, no 5xx, heap stable, clean exits`,
  async () => {
    const result = await runSoak({
      seconds: SECONDS,
      pages: PAGES,
      instances: 2,
      // A loaded machine answers fewer requests in the time: the load goes on (up to 4x) until
      // every kind of answer, encoding and invalidation checked below has come at least once.
      until: covers,
      maxSeconds: SECONDS * 4,
    });
    console.log(describeSoak(result));

    // How many requests fit in the time depends on the machine (SECURITY.md records the
    // figures of each run); what must hold is that the soak ran, and that every answer in it
    // was right (below).
    expect(result.requests).toBeGreaterThan(0);
    expect(result.failures.slice(0, 20)).toEqual([]);
    expect(result.wrongBodies.slice(0, 20)).toEqual([]);
    expect(result.expiredServed.slice(0, 20)).toEqual([]);
    expect(result.webhookFailures.slice(0, 20)).toEqual([]);
    // Every kind of answer and every invalidation mode actually happened.
    for (const state of STATES) expect(result.states[state]).toBeGreaterThan(0);
    for (const encoding of ENCODINGS) expect(result.encodings[encoding]).toBeGreaterThan(0);
    for (const mode of MODES)
      expect(Object.keys(result.invalidations).some((label) => label.endsWith(`/${mode}`))).toBe(
        true,
      );

    // Heap stable after warm-up: the last sample (after a full GC) is under 1.5x the first
    // sample taken after warm-up, plus 20 MB.
    result.heap.forEach((samples, i) => {
      const last = samples.at(-1) ?? 0;
      expect({
        instance: i,
        last: last < result.heapAfterWarmUp[i] * 1.5 + 20 * 1024 * 1024,
      }).toEqual({
        instance: i,
        last: true,
      });
    });

    // Each instance closed its server, cache and Redis clients on SIGTERM and then exited by
    // itself with 0: nothing (no socket, timer or client) was left holding it.
    expect(result.exits).toEqual(result.exits.map(() => ({ code: 0, signal: null })));
    expect(result.instanceErrors).toEqual([]);
  },
  SECONDS * 4 * 1000 + 90_000,
);
