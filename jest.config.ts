import { readdirSync } from 'node:fs';
import path from 'node:path';
import type { Config } from 'jest';

type Project = NonNullable<Config['projects']>[number] & object;

/**
 * One Jest project per folder of `__tests__/`, by what its tests need (README "Running the
 * tests"): `npx jest --selectProjects unit` runs one, `npm test` (plain `jest`) runs them all.
 *   unit:  no socket, no Redis, no child process.
 *   http:  in-process servers on loopback (supertest, fetch, raw sockets); no Redis.
 *   redis: the Redis at REDIS_URL (default 127.0.0.1:6379), or `redis-server`s and app
 *          instances the tests start themselves.
 *   e2e:   child processes under test (README scripts, the demo, exits), Chromium, Varnish,
 *          the framework examples built by their CLIs, the packed package, the soak.
 */
function project(name: string): Project {
  return {
    displayName: name,
    testEnvironment: 'node',
    roots: [`<rootDir>/__tests__/${name}`],
    testMatch: ['**/*.test.ts'],
    // The library's own reports to `console` are expected noise in tests, and each test
    // starts with no warning printed yet (see the files).
    setupFilesAfterEnv: [
      '<rootDir>/__tests__/setup/quiet-console.ts',
      '<rootDir>/__tests__/setup/fresh-warnings.ts',
    ],
    transform: {
      '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json' }],
    },
  };
}

const PROJECTS = ['unit', 'http', 'redis', 'e2e'];

// A test file outside the four folders would be run by no project, silently: refuse instead.
const strays = readdirSync(path.join(__dirname, '__tests__'), { recursive: true })
  .map(String)
  .filter((file) => file.endsWith('.test.ts') && !PROJECTS.includes(file.split(path.sep)[0]));
if (strays.length > 0) {
  throw new Error(
    `test files in no Jest project (move each into __tests__/unit, http, redis or e2e): ${strays.join(', ')}`,
  );
}

const config: Config = {
  projects: PROJECTS.map(project),
  // Servers, sockets and Redis clients must all be closed by the tests themselves:
  // a leaked handle is a bug we want to see, so Jest is not told to force-exit.
  testTimeout: 20_000,
};

export default config;
