// The layering rules of ARCHITECTURE.md, checked by test/unit/layering.test.ts (dependency-cruiser).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'protocol-is-pure',
      comment: 'protocol/ imports nothing of ours: pure functions, no I/O.',
      severity: 'error',
      from: { path: '^src/protocol/' },
      to: { path: '^src/', pathNot: '^src/protocol/' },
    },
    {
      name: 'transports-know-not-the-worker',
      comment: 'Brokers and backends know the protocol, never the worker or the app.',
      severity: 'error',
      from: { path: '^src/(brokers|backends)/' },
      to: { path: '^src/(worker/|control/|events/|app/celeriac\\.ts$)' },
    },
    {
      name: 'worker-knows-no-transport',
      comment: 'worker/, control/ and events/ see the Broker and ResultBackend interfaces and the WorkerHost, never a concrete transport or the app.',
      severity: 'error',
      from: { path: '^src/(worker|control|events)/' },
      to: { path: '^src/(brokers/(?!types\\.ts$)|backends/(?!types\\.ts$)|app/celeriac\\.ts$)' },
    },
    {
      name: 'no-cycles',
      comment: 'No import cycles (type-only imports erase at run time and may point back).',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
