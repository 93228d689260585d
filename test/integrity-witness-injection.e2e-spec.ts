import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify, witnessText } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// audit-verify takes the witness from a CloudWatch export of the audit.sealed lines (raw JSON lines,
// `<timestamp> <json>` lines, `{"message": …}` lines), each line whole: an app log line in the same
// log group that ends with text a client sent (a rejected body, say) is not a witness line, so a
// client cannot make the audit of an untouched trail end in "ANOMALIES FOUND".
describe('a client-made audit.sealed line inside an app log line', () => {
  let db: TestPostgres;
  let dir: string;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('trail');
    dir = await mkdtemp(join(tmpdir(), 'audit-witness-injection-'));
  }, 60_000);

  afterAll(async () => {
    await db?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('an untouched trail verifies clean against its log group', async () => {
    const stderr = new StderrCapture();
    let witness: string;
    try {
      const app = await startSealingApp(db.url('trail'), { integrity: { intervalMs: 3_600_000 } });
      try {
        await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'n-1' });
        await app.get(AuditSealer).sealNow();
      } finally {
        await app.close();
      }
      witness = witnessText(stderr);
    } finally {
      stderr.restore();
    }
    const body = JSON.stringify({
      event: 'audit.sealed',
      trail: 'trail/audit_log',
      seq: 99,
      hash: 'ab'.repeat(32),
      prevHash: 'cd'.repeat(32),
    });
    // What other loggers of the app write to the same stderr: Nest's JSON logger, and a plain line.
    const appLines = [
      JSON.stringify({ level: 'warn', context: 'NdasController', message: `rejected request body ${body}` }),
      `[Nest] 4242  - 12/04/2026, 10:00:00 AM    WARN [NdasController] rejected request body ${body}`,
    ];
    for (const line of appLines) {
      const file = join(dir, `log-group-${appLines.indexOf(line)}.log`);
      await writeFile(file, `${witness}${line}\n`);
      const result = await verify(db.url('trail'), '--witness', file);
      expect({ anomalies: result.anomalies, code: result.code }).toEqual({ anomalies: [], code: 0 });
    }
  }, 60_000);
});
