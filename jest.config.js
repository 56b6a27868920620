// Five projects: unit tests sit next to the code; integration, e2e and njs08 drive real nginx, PostgreSQL and Chromium
// (njs08: the nginx of a Debian 13 chroot); compose runs docker-compose.yml on a real Docker engine.
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }];
const common = {
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': swc },
  testEnvironment: 'node',
};
export default {
  // Integration and browser tests start real servers; per-project timeouts are not supported by jest.
  testTimeout: 30000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/njs/src/**/*.test.ts', '<rootDir>/auth-service/src/**/*.test.ts', '<rootDir>/scripts/**/*.test.ts', '<rootDir>/examples/**/*.test.ts', '<rootDir>/deploy/**/*.test.ts'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/tests/integration/**/*.test.ts'] },
    { ...common, displayName: 'e2e', testMatch: ['<rootDir>/tests/e2e/**/*.test.ts'] },
    // nginx 1.26 + njs 0.8 from the Debian 13 root of scripts/trixie-root.sh (make test-njs08).
    { ...common, displayName: 'njs08', testMatch: ['<rootDir>/tests/njs08/**/*.test.ts'] },
    // The docker-compose deployment on a real Docker engine (make test-compose, as root).
    { ...common, displayName: 'compose', testMatch: ['<rootDir>/tests/compose/**/*.test.ts'] },
  ],
};
