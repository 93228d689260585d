import { type INestApplication, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuditLog, AuditModule, AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';

// A superuser who tampers with a row and then sets the auditor's (or the writer's) search_path to
// a schema of their own: pristine copies of the two tables, or an `||` operator that turns the
// tampered bytes back into the sealed ones. The sealer and audit-verify must resolve no name
// through it.
describe('search_path of the roles that seal and verify', () => {
  let db: TestPostgres;
  let target: string;
  let copies = 0;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
    try {
      await Promise.all(
        Array.from({ length: 30 }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `n-${i}`, userId: 'alice' })),
      );
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
    const [row] = await db.query<{ id: string }>('SELECT id::text FROM audit_log ORDER BY id LIMIT 1', [], 'base');
    target = row.id;
  }, 120_000);

  afterAll(async () => {
    await db?.stop();
  });

  /** The module sealing as a role that may not run migrations (the tables are there already). */
  async function startWriterApp(url: string): Promise<INestApplication> {
    @Module({
      imports: [
        TypeOrmModule.forRoot({ type: 'postgres', url, entities: [AuditLog] }),
        AuditModule.forRoot({ auditHttp: false, integrity: { enabled: true, intervalMs: 3_600_000 } }),
      ],
    })
    class WriterAppModule {}
    const moduleRef = await Test.createTestingModule({ imports: [WriterAppModule] }).compile();
    const app = moduleRef.createNestApplication({ logger: false });
    await app.init();
    return app;
  }

  /** A copy of the sealed trail whose row `target` a superuser changed from alice to mally; an auditor role. */
  async function tamperedCopy(): Promise<{ name: string; sql: (text: string) => Promise<unknown> }> {
    const name = `case${++copies}`;
    await db.query(`CREATE DATABASE ${name} TEMPLATE base`);
    const sql = (text: string) => db.query(text, [], name);
    await sql(`CREATE ROLE auditor_${name} LOGIN PASSWORD 'auditor'`);
    await sql(`GRANT SELECT ON audit_log, audit_seal TO auditor_${name}`);
    await sql('CREATE SCHEMA shadow');
    await sql(`GRANT USAGE ON SCHEMA shadow TO auditor_${name}`);
    return { name, sql };
  }
  const tamper = (sql: (text: string) => Promise<unknown>) =>
    sql(
      `ALTER TABLE audit_log DISABLE TRIGGER USER; UPDATE audit_log SET user_id = 'mally' WHERE id = '${target}'; ALTER TABLE audit_log ENABLE TRIGGER USER`,
    );
  /** An `||` on bytea that puts 'alice' back wherever 'mally' is appended (same length, so the length prefix holds). */
  const shadowConcat = `
    CREATE FUNCTION shadow.cat(a bytea, b bytea) RETURNS bytea LANGUAGE sql IMMUTABLE SET search_path = pg_catalog AS
      $$ SELECT pg_catalog.byteacat(a, CASE WHEN b = '\\x6d616c6c79'::bytea THEN '\\x616c696365'::bytea ELSE b END) $$;
    CREATE OPERATOR shadow.|| (LEFTARG = bytea, RIGHTARG = bytea, FUNCTION = shadow.cat)`;

  it('the shadow operator really puts alice back where mally is appended', async () => {
    const { name, sql } = await tamperedCopy();
    await sql(shadowConcat);
    const [{ hidden }] = await db.query<{ hidden: boolean }>(
      `SELECT (convert_to('x', 'UTF8') OPERATOR(shadow.||) convert_to('mally', 'UTF8')) = convert_to('xalice', 'UTF8') AS hidden`,
      [],
      name,
    );
    expect(hidden).toBe(true);
  });

  it('names the changed row when the auditor role reaches pristine shadow copies of the tables first', async () => {
    const { name, sql } = await tamperedCopy();
    await sql('CREATE TABLE shadow.audit_log AS TABLE public.audit_log');
    await sql('CREATE TABLE shadow.audit_seal AS TABLE public.audit_seal');
    await sql(`GRANT SELECT ON shadow.audit_log, shadow.audit_seal TO auditor_${name}`);
    await tamper(sql);
    await sql(`ALTER ROLE auditor_${name} SET search_path = shadow, public`);
    const result = await verify(db.url(name, `auditor_${name}`, 'auditor'));
    expect(result.anomalies).toEqual([`ANOMALY row_changed row ${target}`]);
    expect(result.code).toBe(1);
  });

  it('names the changed row when the auditor role reaches a shadow || operator before pg_catalog', async () => {
    const { name, sql } = await tamperedCopy();
    await tamper(sql);
    await sql(shadowConcat);
    await sql(`ALTER ROLE auditor_${name} SET search_path = shadow, pg_catalog, public`);
    for (const jobs of ['1', '2']) {
      const result = await verify(db.url(name, `auditor_${name}`, 'auditor'), '--jobs', jobs);
      expect(result.anomalies).toEqual([`ANOMALY row_changed row ${target}`]);
      expect(result.code).toBe(1);
    }
  });

  it('seals true leaves when the writer role reaches a shadow || operator before pg_catalog', async () => {
    const { name, sql } = await tamperedCopy();
    await sql(shadowConcat);
    await sql(`GRANT INSERT ON audit_log, audit_seal TO auditor_${name}`);
    await sql(`ALTER ROLE auditor_${name} SET search_path = shadow, pg_catalog, public`);
    const app = await startWriterApp(db.url(name, `auditor_${name}`, 'auditor'));
    try {
      // Rows whose user is 'mally': a leaf computed through the shadow operator would say 'alice'.
      await Promise.all(
        Array.from({ length: 10 }, (_, i) => app.get(AuditService).log({ action: 'nda_created', entityId: `m-${i}`, userId: 'mally' })),
      );
      await app.get(AuditSealer).sealNow();
    } finally {
      await app.close();
    }
    const [{ seals }] = await db.query<{ seals: number }>('SELECT count(*)::int AS seals FROM audit_seal', [], name);
    expect(seals).toBe(2);
    const result = await verify(db.url(name));
    expect(result.anomalies).toEqual([]);
    expect(result.code).toBe(0);
  });
});
