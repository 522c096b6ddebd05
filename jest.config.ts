import type { Config } from 'jest';

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/__tests__'],
  testMatch: ['**/*.test.ts'],
  // The library's own reports to `console` are expected noise in tests (see the file).
  setupFilesAfterEnv: ['<rootDir>/__tests__/setup/quiet-console.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  // Servers, sockets and Redis clients must all be closed by the tests themselves:
  // a leaked handle is a bug we want to see, so Jest is not told to force-exit.
  testTimeout: 20_000,
};

export default config;
