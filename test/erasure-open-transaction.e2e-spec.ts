import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { AuditSealer, AuditService } from '../src/audit';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md "Erasing": "{ userId } erases every row whose actor is that user". A caller's
// transaction that holds a record() row of the user is still open when erase() runs, and commits
// after erase() has answered: the row cannot be erased by it, and audit-verify names it.
describe('erase() while a record() row of the subject waits in an open transaction', () => {
  let db: TestPostgres;
  let url: string;
  let app: INestApplication;
  let stderr: StderrCapture;
  const keys = sealingKeys();
  const secret = randomBytes(32).toString('base64');
  const writer = { user: 'audit_writer', password: 'writer-pw' };

  beforeAll(async () => {
    db = await TestPostgres.start();
    url = await createAuditDatabase(db, 'audit', writer);
    await db.query(`GRANT EXECUTE ON FUNCTION audit_log_erase(text, text, text, uuid, boolean) TO ${writer.user}`, [], 'audit');
    stderr = new StderrCapture();
    app = await startErasureApp(url, {
      privacy: { personalData: ['changes.body.email'] },
      integrity: { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret }] },
    });
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await db?.stop();
  });

  it('leaves no value of the erased user unnamed once erase() has answered and the transaction committed', async () => {
    const audit = app.get(AuditService);
    const runner = app.get(DataSource).createQueryRunner();
    await runner.connect();
    await runner.startTransaction();
    let recordId: string;
    let outcome: string;
    try {
      const record = await audit.record(
        {
          action: 'profile_updated',
          entityType: 'Profile',
          entityId: 'p-1',
          userId: 'u-9',
          changes: { body: { email: 'u-9@example.com' } },
        },
        { manager: runner.manager },
      );
      recordId = record.id;
      const erasing = audit.erase({ userId: 'u-9', requestedBy: 'dpo' });
      let timer: NodeJS.Timeout | undefined;
      outcome = await Promise.race([
        erasing.then((r) => `answered: ${r.erased} erased`),
        new Promise<string>((resolve) => (timer = setTimeout(() => resolve('waiting'), 5_000))),
      ]);
      clearTimeout(timer);
      await runner.commitTransaction();
      await erasing;
    } finally {
      await runner.release();
    }
    await app.get(AuditSealer).sealNow();
    const [row] = await db.query<{ user_id: string }>(`SELECT user_id FROM audit_log WHERE id = $1`, [recordId], 'audit');
    const report = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', `k1:${secret}`);
    const named = report.out.some((line) => line.startsWith('ANOMALY') && line.includes(recordId));
    // Erased, or (its value still there) named by audit-verify.
    expect({ outcome, erasedOrNamed: row.user_id === '[ERASED]' || named }).toEqual({ outcome, erasedOrNamed: true });
  }, 90_000);
});
