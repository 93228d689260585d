import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

// The module as another Nest app gets it: `npm pack`, unpacked into that app's node_modules,
// with Nest, TypeORM and friends resolved from the app (the peer dependencies).
describe('the npm package', () => {
  const root = resolve(__dirname, '..');
  const work = mkdtempSync(join(tmpdir(), 'audit-pack-'));
  let files: string[];

  beforeAll(() => {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as {
      filename: string;
      files: { path: string }[];
    }[];
    files = packed.files.map((f) => f.path);
    const modules = join(work, 'app', 'node_modules');
    mkdirSync(modules, { recursive: true });
    execFileSync('tar', ['-xzf', join(work, packed.filename), '-C', work]);
    renameSync(join(work, 'package'), join(modules, 'nestjs-failsafe-audit'));
  }, 120_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships the built module, its typings and the migration, and nothing of the example app', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/src/audit/index.js',
        'dist/src/audit/index.d.ts',
        'dist/migrations/1732700000000-CreateAuditLog.js',
      ]),
    );
    expect(files.filter((f) => /dist\/src\/(main|app\.module|ndas|health)/.test(f) || f.endsWith('.spec.js'))).toEqual([]);
  });

  it('can be required by another app, exposing AuditModule, Audited, AuditLog and the migration', () => {
    const script = `
      require('reflect-metadata');
      const audit = require('nestjs-failsafe-audit');
      const dynamic = audit.AuditModule.forRoot({ bufferSize: 10 });
      const migration = new audit.CreateAuditLog1732700000000();
      class C { create() {} }
      audit.Audited('thing_created')(C.prototype, 'create', Object.getOwnPropertyDescriptor(C.prototype, 'create'));
      console.log(JSON.stringify({
        module: dynamic.module.name,
        providers: dynamic.providers.length,
        entity: typeof audit.AuditLog,
        migration: migration.name,
        service: typeof audit.AuditService,
      }));`;
    const out = execFileSync(process.execPath, ['-e', script], {
      cwd: join(work, 'app'),
      encoding: 'utf8',
      env: { ...process.env, NODE_PATH: join(root, 'node_modules') },
    });
    expect(JSON.parse(out)).toEqual({
      module: 'AuditModule',
      providers: expect.any(Number),
      entity: 'function',
      migration: 'CreateAuditLog1732700000000',
      service: 'function',
    });
    expect(readdirSync(join(work, 'app', 'node_modules', 'nestjs-failsafe-audit', 'dist', 'src', 'audit'))).toContain('audit.module.d.ts');
  });
});
