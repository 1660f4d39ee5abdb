/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];

module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts', '**/*.e2e-spec.ts'],
  // Fresh Nest apps with their own dependencies, run by test/apps/run.sh.
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/apps/'],
  modulePathIgnorePatterns: ['<rootDir>/test/apps/'],
  // Nest 12 ships ESM only: transform it too.
  transform: { '^.+\\.(t|j)s$': swc },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
  moduleNameMapper: {
    '^nestjs-parallel-worker$': '<rootDir>/lib/index.ts',
    '^nestjs-parallel-worker/terminus$': '<rootDir>/lib/health/index.ts',
    '^nestjs-parallel-worker/metrics$': '<rootDir>/lib/metrics/index.ts',
    '^nestjs-parallel-worker/dashboard$': '<rootDir>/lib/dashboard/index.ts',
  },
  testTimeout: 60_000,
};
