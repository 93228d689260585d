import { AuditSealer, AuditService } from '../src/audit';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// audit-verify "names every row or seal that does not match"; exit status 1 for
// anomalies, 2 only for "usage or connection error". A superuser who garbles a seal's own columns
// must get ANOMALIES FOUND (exit 1) naming it, never a crash, an exit 2 or a clean result.
describe('audit-verify on seals garbled by a superuser', () => {
  let db: TestPostgres;
  let copies = 0;

  beforeAll(async () => {
    db = await TestPostgres.start();
    await db.createDatabase('base');
    const stderr = new StderrCapture();
    try {
      const app = await startSealingApp(db.url('base'), { integrity: { intervalMs: 3_600_000 } });
      try {
        const audit = app.get(AuditService);
        for (let round = 0; round < 3; round++) {
          await Promise.all([1, 2, 3].map((i) => audit.log({ action: 'nda_created', entityType: 'NDA', entityId: `n-${round}-${i}` })));
          await app.get(AuditSealer).sealNow();
        }
      } finally {
        await app.close();
      }
    } finally {
      stderr.restore();
    }
  }, 90_000);

  afterAll(() => db?.stop());

  // Held (named, exit 1) when tried: a manifest a byte short or long, an empty root, a 3-byte hash,
  // an unknown version, a negative row count, a horizon of 0, a last_tx past the rows, a nil
  // last_id, an empty prev_hash. Broken: a sealed_at PostgreSQL holds as infinity.
  it.each([
    ['sealed_at infinity', `sealed_at = 'infinity'`],
    ['sealed_at -infinity', `sealed_at = '-infinity'`],
  ])(
    '%s in seal 2: named, exit 1',
    async (_, change) => {
      const name = `case${++copies}`;
      await db.query(`CREATE DATABASE ${name} TEMPLATE base`);
      await db.query(
        `ALTER TABLE audit_seal DISABLE TRIGGER USER; UPDATE audit_seal SET ${change} WHERE seq = 2; ALTER TABLE audit_seal ENABLE TRIGGER USER`,
        [],
        name,
      );
      const result = await verify(db.url(name));
      const crashed = result.out.filter((line) => !line.startsWith('ANOMALY') && /error|cannot|invalid|TypeError|RangeError/i.test(line));
      expect({ code: result.code, named: result.anomalies.length > 0, crashed }).toEqual({ code: 1, named: true, crashed: [] });
    },
    30_000,
  );
});
