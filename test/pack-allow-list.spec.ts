import { unexpectedPackFiles } from './support/pack-allow-list';

// The allow-list the package test applies to `npm pack`: it lets the package's files through and
// stops everything else. (test/package.e2e-spec.ts applies it to the real pack.)
describe('the npm package allow-list', () => {
  it('allows the built module, its typings, migrations, the viewer page, docs, README, LICENSE and CHANGELOG', () => {
    const shipped = [
      'package.json',
      'README.md',
      'LICENSE',
      'CHANGELOG.md',
      'docs/GUIDE.md',
      'docs/viewer-status.png',
      'dist/src/audit/index.js',
      'dist/src/audit/index.d.ts',
      'dist/src/audit/testing/index.d.ts',
      'dist/src/audit/replay/replay.cli.js',
      'dist/src/audit/integrity/verify.cli.js',
      'dist/migrations/1732700000000-CreateAuditLog.js',
      'dist/migrations/1764300000001-AuditReadIndexes.d.ts',
      'src/audit/viewer/assets/index.html',
      'src/audit/viewer/assets/viewer.css',
    ];
    expect(unexpectedPackFiles(shipped)).toEqual([]);
  });

  it('stops tests, the example app, sources, benchmarks, .data, keys and anything unknown', () => {
    const unexpected = [
      'test/package.e2e-spec.ts',
      'dist/test/support/postgres.js',
      'dist/src/audit/ring-buffer.spec.js',
      'dist/src/audit/ring-buffer.spec.d.ts',
      'dist/src/audit/audit.e2e-spec.js',
      'dist/src/main.js',
      'dist/src/app.module.d.ts',
      'dist/src/ndas/ndas.controller.js',
      'src/audit/index.ts',
      'src/main.ts',
      'migrations/1732700000000-CreateAuditLog.ts',
      'bench/dist/bench/run.js',
      'bench/results/latest.json',
      'chaos/results/latest.json',
      '.data/postgres/PG_VERSION',
      'seal.pem',
      'docs/keys/seal.key',
      'dist/src/audit/index.js.map',
      '.env',
      'node_modules/pg/package.json',
    ];
    expect(unexpectedPackFiles(unexpected)).toEqual(unexpected);
  });
});
