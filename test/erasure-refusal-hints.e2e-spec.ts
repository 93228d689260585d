import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AuditService } from '../src/audit';
import { runErase } from '../src/audit/privacy/erase-command';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { TestPostgres } from './support/postgres';

// What an erasure refused by the database tells the one who runs it. `audit_log_erase` refuses to
// run (42501, naming the trigger) while a trigger the trail's owner did not provide is on the tables
// it writes (AuditEraseRefusesForeignTriggers1766900000000): no GRANT fixes that, the trigger has to
// go (docs/RUNBOOK.md, 16), and `audit-erase` says so. A role without EXECUTE on the function is told
// to grant that, not INSERT and SELECT on audit_log. `AuditService.erase()` rejects with
// PostgreSQL's own error, which carries the function's own hint.
describe('an erasure the database refuses, and what it says to do', () => {
  const WRITER = { user: 'erasing_writer', password: 'erasing-writer-pw' };
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;
  const entryKeys = [{ id: 'k1', secret: entryKey.slice(3) }];
  const refusal =
    'audit_log_erase refuses to run while a trigger its owner did not provide is on the tables it writes: grab on public.audit_log';
  let db: TestPostgres;
  let url: string;
  let app: INestApplication | undefined;

  const sql = (text: string) => db.query(text, [], 'audit');
  const eraseAs = async (as: string) => {
    const err: string[] = [];
    const code = await runErase(
      ['--url', as, '--user', 'u-1', '--by', 'dpo', '--timeout-ms', '10000'],
      { AUDIT_INTEGRITY_ENTRY_KEY: entryKey },
      { out: () => undefined, err: (line) => err.push(line) },
    );
    return { code, err };
  };
  const asWriter = async (text: string) => {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(text);
    } finally {
      await client.end();
    }
  };

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', WRITER);
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  it('without EXECUTE on audit_log_erase, audit-erase says to grant it', async () => {
    expect(await eraseAs(url)).toEqual({
      code: 2,
      err: [
        'audit-erase failed: 42501: permission denied for function audit_log_erase (GRANT EXECUTE ON FUNCTION audit_log_erase to this role)',
      ],
    });
  }, 60_000);

  it("with the role's own trigger on audit_log, audit-erase names it and says to drop it; once dropped, the erasure runs", async () => {
    // docs/INTEGRITY.md, "Roles" (with privacy), plus TRIGGER on audit_log (which GRANT ALL gives).
    await sql(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${WRITER.user}`);
    await sql(`GRANT TRIGGER ON audit_log TO ${WRITER.user}`);
    await sql(`CREATE SCHEMA app_data AUTHORIZATION ${WRITER.user}`);
    await asWriter(`CREATE FUNCTION app_data.grab() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$`);
    await asWriter(`CREATE TRIGGER grab AFTER UPDATE ON public.audit_log FOR EACH STATEMENT EXECUTE FUNCTION app_data.grab()`);

    expect(await eraseAs(url)).toEqual({
      code: 2,
      err: [
        `audit-erase failed: 42501: ${refusal} (as the trail's owner, drop each trigger named and revoke TRIGGER on the trail's tables from every role but their owner: docs/RUNBOOK.md, 16)`,
      ],
    });

    // erase() rejects with PostgreSQL's error as raised, the function's hint with it.
    app = await startErasureApp(url, { privacy: { personalData: ['metadata.ip'] }, integrity: { intervalMs: 3_600_000, entryKeys } });
    const rejected = await app
      .get(AuditService)
      .erase({ userId: 'u-1', requestedBy: 'dpo' })
      .then(
        () => 'erased',
        (error: { code?: string; message?: string; hint?: string }) => ({ code: error.code, message: error.message, hint: error.hint }),
      );
    expect(rejected).toEqual({
      code: '42501',
      message: refusal,
      hint: `it would run as the trail's owner: drop it, and revoke TRIGGER on the trail's tables from every role but their owner (docs/INTEGRITY.md, "Roles")`,
    });

    // What the hint says to do: as the owner, drop the trigger and revoke TRIGGER.
    await sql(`DROP TRIGGER grab ON audit_log`);
    await sql(`REVOKE TRIGGER ON audit_log FROM ${WRITER.user}`);
    expect(await eraseAs(url)).toEqual({ code: 0, err: [] });
  }, 90_000);
});
