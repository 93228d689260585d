import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import ts from 'typescript';
import { TestPostgres } from './support/postgres';
import { unexpectedPackFiles } from './support/pack-allow-list';
import { readmeBlocks } from './support/readme-blocks';

// The module as another Nest app gets it: `npm pack`, unpacked into that app's node_modules,
// with Nest, TypeORM and friends resolved from the app (the peer dependencies).
describe('the npm package', () => {
  const root = resolve(__dirname, '..');
  const work = mkdtempSync(join(tmpdir(), 'audit-pack-'));
  let files: string[];
  let modes: Map<string, number>;

  beforeAll(() => {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
        cwd: root,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }),
    ) as {
      filename: string;
      files: { path: string; mode: number }[];
    }[];
    files = packed.files.map((f) => f.path);
    modes = new Map(packed.files.map((f) => [f.path, f.mode]));
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

  it('ships the built module, its typings, the migrations, the CLIs, docs, README, LICENSE and CHANGELOG, and nothing else', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(files).toEqual(
      expect.arrayContaining([
        'package.json',
        'README.md',
        'LICENSE',
        'CHANGELOG.md',
        'docs/GUIDE.md',
        'docs/CONFIGURATION.md',
        'docs/FAILURES.md',
        'docs/PERFORMANCE.md',
        'docs/viewer-timeline.png',
        'dist/src/audit/index.js',
        'dist/src/audit/index.d.ts',
        'dist/src/audit/testing/index.js',
        'dist/src/audit/testing/index.d.ts',
        'dist/migrations/1732700000000-CreateAuditLog.js',
        'dist/migrations/1732700000000-CreateAuditLog.d.ts',
        ...Object.values(pkg.bin),
      ]),
    );
    const migrations = readdirSync(join(root, 'migrations')).filter((name) => name.endsWith('.ts'));
    expect(files.filter((f) => f.startsWith('dist/migrations/') && f.endsWith('.js')).length).toBe(migrations.length);
    // Every file matches the allow-list: no tests, example app, benchmarks, .data or keys.
    expect(unexpectedPackFiles(files)).toEqual([]);
    const installed = join(work, 'app', 'node_modules', 'nestjs-failsafe-audit');
    for (const bin of Object.values(pkg.bin)) {
      expect({ bin, firstLine: readFileSync(join(installed, bin), 'utf8').split('\n')[0] }).toEqual({
        bin,
        firstLine: '#!/usr/bin/env node',
      });
      expect({ bin, executable: ((modes.get(bin) ?? 0) & 0o111) !== 0 }).toEqual({ bin, executable: true });
    }
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

  it('compiles with its testing entry under moduleResolution node10, node16, nodenext and bundler, and loads from a CommonJS and an ESM app', () => {
    const consumer = [
      "import 'reflect-metadata';",
      "import { AUDIT_MIGRATIONS, AuditModule, type AuditModuleOptions, AuditService, DEFAULT_REDACT_KEYS } from 'nestjs-failsafe-audit';",
      "import { failingAuditRepository, waitForAuditState } from 'nestjs-failsafe-audit/testing';",
      'const options: AuditModuleOptions = { bufferSize: 10, integrity: { enabled: false } };',
      'const repository = failingAuditRepository();',
      'console.log(JSON.stringify({',
      '  module: AuditModule.forRoot(options).module.name,',
      '  migrations: AUDIT_MIGRATIONS.length,',
      '  service: typeof AuditService,',
      '  heal: typeof repository.heal,',
      '  wait: typeof waitForAuditState,',
      "  redacts: DEFAULT_REDACT_KEYS.includes('password'),",
      '}));',
      '',
    ].join('\n');
    // node16 and nodenext resolve alike (nodenext is node16 today), so each is run once, with the
    // app's own module kind. One compiler in this process for every mode, sharing parsed files; the consumer and the
    // package's own typings are type-checked (the other libraries' are not: they are not ours).
    const parsed = new Map<string, ts.SourceFile | undefined>();
    const compile = (kind: 'cjs' | 'esm', module: string, moduleResolution: string) => {
      const mode = `${kind} ${module}/${moduleResolution}`;
      const dir = join(work, 'app', `consumer-${kind}-${moduleResolution}`);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: kind === 'esm' ? 'module' : 'commonjs' }));
      writeFileSync(join(dir, 'index.ts'), consumer);
      const json = { strict: true, target: 'ES2022', module, moduleResolution, types: ['node'], outDir: join(dir, 'out') };
      const { options, errors } = ts.convertCompilerOptionsFromJson(json, dir);
      expect(errors).toEqual([]);
      const host = ts.createCompilerHost(options);
      const getSourceFile = host.getSourceFile.bind(host);
      host.getSourceFile = (file, language, ...rest) => {
        const key = `${file} ${JSON.stringify(language)}`;
        if (!parsed.has(key)) parsed.set(key, getSourceFile(file, language, ...rest));
        return parsed.get(key);
      };
      const program = ts.createProgram([join(dir, 'index.ts')], options, host);
      const ours = program
        .getSourceFiles()
        .filter((f) => !f.isDeclarationFile || f.fileName.includes('/node_modules/nestjs-failsafe-audit/'));
      const found = [
        ...program.getOptionsDiagnostics(),
        ...program.getGlobalDiagnostics(),
        ...ours.flatMap((f) => [...program.getSyntacticDiagnostics(f), ...program.getSemanticDiagnostics(f)]),
      ].map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' '));
      expect({ mode, found }).toEqual({ mode, found: [] });
      expect({ mode, testing: ours.some((f) => f.fileName.endsWith('/nestjs-failsafe-audit/dist/src/audit/testing/index.d.ts')) }).toEqual({
        mode,
        testing: true,
      });
      return { program, out: join(dir, 'out', 'index.js') };
    };
    const modes = [
      ['cjs', 'commonjs', 'node10'],
      ['cjs', 'node16', 'node16'],
      ['esm', 'nodenext', 'nodenext'],
      ['esm', 'preserve', 'bundler'],
    ] as const;
    const built = new Map(modes.map(([kind, module, resolution]) => [`${kind} ${resolution}`, compile(kind, module, resolution)]));
    const expected = {
      module: 'AuditModule',
      migrations: expect.any(Number),
      service: 'function',
      heal: 'function',
      wait: 'function',
      redacts: true,
    };
    for (const app of ['cjs node10', 'esm nodenext']) {
      const { program, out: file } = built.get(app)!;
      expect(program.emit().emitSkipped).toBe(false);
      const out = execFileSync(process.execPath, [file], { encoding: 'utf8' });
      expect({ app, loaded: JSON.parse(out) as unknown }).toEqual({ app, loaded: expected });
    }
    expect(readFileSync(built.get('esm nodenext')!.out, 'utf8')).toMatch(/^import \{ AUDIT_MIGRATIONS/m);
  }, 120_000);

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
