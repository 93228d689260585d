import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { TestPostgres } from './support/postgres';
import { readmeBlocks } from './support/readme-blocks';

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
    // The app's other dependencies: the packages this project installed (Nest, TypeORM, jest, …).
    for (const name of readdirSync(join(root, 'node_modules'))) {
      if (name !== '.bin' && name !== 'nestjs-failsafe-audit') symlinkSync(join(root, 'node_modules', name), join(modules, name));
    }
  }, 120_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('ships the built module, its typings and the migration, and nothing of the example app', () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'dist/src/audit/index.js',
        'dist/src/audit/index.d.ts',
        'dist/src/audit/testing/index.js',
        'dist/src/audit/testing/index.d.ts',
        'dist/migrations/1732700000000-CreateAuditLog.js',
      ]),
    );
    expect(files.filter((f) => /dist\/src\/(main|app\.module|ndas|health)/.test(f) || f.endsWith('.spec.js'))).toEqual([]);
  });

  it("ships the audit viewer's page, which the built module finds inside the package", () => {
    expect(files).toEqual(
      expect.arrayContaining([
        'src/audit/viewer/assets/index.html',
        'src/audit/viewer/assets/viewer.js',
        'src/audit/viewer/assets/viewer.css',
      ]),
    );
    const installed = join(work, 'app', 'node_modules', 'nestjs-failsafe-audit');
    const script = `
      const viewer = require(${JSON.stringify(join(installed, 'dist/src/audit/viewer/viewer-assets.js'))});
      const dir = viewer.viewerAssetsDir();
      console.log(JSON.stringify({ dir, files: [...viewer.readViewerAssets(dir).keys()] }));`;
    const found = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as { dir: string; files: string[] };
    expect(found.dir).toBe(join(installed, 'src/audit/viewer/assets'));
    expect(found.files).toEqual(expect.arrayContaining(['index.html', 'viewer.js', 'viewer.css', 'list.js', 'timeline.js', 'status.js']));
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

  it('serves a new strict TypeScript app made of the README examples, whose test overrides the AuditLog repository with the testing entry point', async () => {
    const app = join(work, 'app');
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(app, path)), { recursive: true });
      writeFileSync(join(app, path), text);
    };
    for (const block of readmeBlocks().filter((b) => !b.path.startsWith('example-'))) write(block.path, block.code);
    const compilerOptions = {
      module: 'commonjs',
      target: 'ES2022',
      strict: true,
      experimentalDecorators: true,
      emitDecoratorMetadata: true,
      esModuleInterop: true,
      skipLibCheck: true,
      types: ['node', 'jest'],
      outDir: 'dist',
    };
    write('tsconfig.json', JSON.stringify({ compilerOptions, include: ['src', 'test'] }));
    write(
      'tsconfig.node16.json',
      JSON.stringify({ extends: './tsconfig.json', compilerOptions: { module: 'node16', moduleResolution: 'node16', noEmit: true } }),
    );
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const run = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
      execFileSync(process.execPath, args, { cwd: app, encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'] });
    run([tsc, '-p', 'tsconfig.json']);
    // Node's own resolution of the package's exports, as with `"module": "node16"`.
    run([tsc, '-p', 'tsconfig.node16.json']);
    const db = await TestPostgres.start();
    try {
      const jestConfig = { rootDir: join(app, 'dist'), testEnvironment: 'node', testRegex: '\\.e2e-spec\\.js$', transform: {} };
      const out = run([join(root, 'node_modules/jest/bin/jest.js'), '--config', JSON.stringify(jestConfig), '--ci', '--json'], {
        ...process.env,
        DATABASE_URL: db.url(),
      });
      const result = JSON.parse(out) as { numPassedTests: number; numFailedTests: number; success: boolean };
      expect(result).toMatchObject({ success: true, numPassedTests: 1, numFailedTests: 0 });
    } finally {
      await db.stop();
    }
  }, 120_000);
});
