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

const config: Config = {
  projects: ['unit', 'http', 'redis', 'e2e'].map(project),
  // Servers, sockets and Redis clients must all be closed by the tests themselves:
  // a leaked handle is a bug we want to see, so Jest is not told to force-exit.
  testTimeout: 20_000,
};

export default config;
