import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { AUDIT_EVENTS, AuditSealer, AuditService, type IntegrityStatus } from '../src/audit';
import { keyIdOf } from '../src/audit/integrity/seal';
import { createAuditDatabase } from './support/audit-database';
import { startErasureApp } from './support/erasure-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { appendLink } from './support/seal-links';
import { StderrCapture } from './support/stderr';

// The sealer runs as the application's role, so that role (and whoever holds a leaked
// DATABASE_URL) can INSERT into audit_seal. A link it appends must never turn the sealer: the
// database refuses what it can check (an unsigned link on a signed chain, a moved entry boundary,
// a horizon from the future), and the sealer builds on no seal it cannot authenticate: it stops,
// names the seal (audit.chain_broken), and never calls the module's own rows forged.

const keys = sealingKeys();
const secret = randomBytes(32).toString('base64');
const entryKey = `k1:${secret}`;
const integrity = { intervalMs: 3_600_000, signingKey: keys.privatePem, entryKeys: [{ id: 'k1', secret }] };

/** Runs `work` on a connection to `url`, closed after. */
async function withClient<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

describe('the seal chain against links appended with the application role', () => {
  let db: TestPostgres;
  let app: INestApplication | undefined;

  /** A database with one signed seal of one genuine row, its app started (`app`); returns the writer's URL. */
  async function sealedTrail(name: string): Promise<string> {
    const url = await createAuditDatabase(db, name, { user: `writer_${name}`, password: 'writer-pw' });
    app = await startErasureApp(url, { integrity });
    await app.get(AuditService).log({ action: 'nda_created', entityType: 'NDA', entityId: 'before-1', userId: 'alice' });
    await app.get(AuditSealer).sealNow();
    return url;
  }

  async function logGenuine(entityId: string): Promise<string> {
    await (app as INestApplication).get(AuditService).log({ action: 'nda_signed', entityType: 'NDA', entityId, userId: 'bob' });
    const [row] = await db.query<{ id: string }>(`SELECT id::text AS id FROM audit_log WHERE entity_id = $1`, [entityId], currentDb);
    return row.id;
  }

  let currentDb = '';

  beforeAll(async () => {
    db = await TestPostgres.start();
  }, 60_000);

  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  afterAll(async () => {
    await db?.stop();
  });

  it('is refused by the database: an unsigned link, a moved entry boundary, a horizon ahead of the server', async () => {
    currentDb = 'refused';
    const url = await sealedTrail(currentDb);
    await withClient(url, async (attacker) => {
      await expect(appendLink(attacker, (n) => ({ horizon: n.horizon }))).rejects.toThrow(/seal \d+ is not signed, and the chain is/);
      const junk = { keyId: keyIdOf(keys.publicKey), signature: randomBytes(64) };
      await expect(appendLink(attacker, () => ({ ...junk, entryAuthFrom: '4000000000' }))).rejects.toThrow(
        /moves the entry-authentication boundary/,
      );
      await expect(appendLink(attacker, () => ({ ...junk, horizon: '4000000000000000000' }))).rejects.toThrow(
        /ahead of the server's transaction ids/,
      );
    });
    const genuineId = await logGenuine('after-1');
    const stderr = new StderrCapture();
    try {
      await app?.get(AuditSealer).sealNow();
      expect(stderr.of(AUDIT_EVENTS.forged)).toEqual([]);
      expect(stderr.of(AUDIT_EVENTS.chainBroken)).toEqual([]);
    } finally {
      stderr.restore();
    }
    const [{ n }] = await db.query<{ n: number }>(
      `SELECT sum(row_count)::int AS n FROM audit_seal WHERE signature IS NOT NULL`,
      [],
      currentDb,
    );
    expect(n).toBe(2);
    const report = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect({ code: report.code, anomalies: report.anomalies, genuine: report.out.filter((l) => l.includes(genuineId)) }).toEqual({
      code: 0,
      anomalies: [],
      genuine: [],
    });
  }, 90_000);

  it('stops the sealer at a link whose signature does not verify, naming it, and calls no genuine row forged', async () => {
    currentDb = 'junk';
    const url = await sealedTrail(currentDb);
    const forgedSeq = await withClient(url, (attacker) =>
      appendLink(attacker, () => ({ keyId: keyIdOf(keys.publicKey), signature: randomBytes(64) })),
    );
    const genuineId = await logGenuine('after-1');
    const stderr = new StderrCapture();
    try {
      await app?.get(AuditSealer).sealNow();
      await app?.get(AuditSealer).sealNow();
      expect(stderr.of(AUDIT_EVENTS.forged)).toEqual([]);
      const broken = stderr.of(AUDIT_EVENTS.chainBroken);
      expect(broken.map((line) => [line.foundSeq, line.code])).toEqual([[forgedSeq, 'AUDIT_SEAL_UNTRUSTED']]);
      expect(String(broken[0].detail)).toContain(
        `seal ${forgedSeq} is signed with key ${keyIdOf(keys.publicKey)}, but its signature does not verify`,
      );
    } finally {
      stderr.restore();
    }
    const status = app?.get(AuditSealer).status() as IntegrityStatus;
    expect({ code: status.chainBroken?.code, forged: status.forged }).toEqual({ code: 'AUDIT_SEAL_UNTRUSTED', forged: 0 });
    const after = await db.query<{ seq: string }>(`SELECT seq::text AS seq FROM audit_seal WHERE seq > $1`, [forgedSeq], currentDb);
    expect(after).toEqual([]);
    const report = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect(report.out.filter((l) => l.includes(genuineId))).toEqual([]);
    expect(report.out).toContain(`ANOMALY seal_signature_invalid seal ${forgedSeq}: the signature does not verify`);
    // RUNBOOK section 10: a superuser removes the link, the app restarts, and the rows written meanwhile are sealed.
    await db.query(
      `ALTER TABLE audit_seal DISABLE TRIGGER USER; DELETE FROM audit_seal WHERE seq = ${forgedSeq}; ALTER TABLE audit_seal ENABLE TRIGGER USER`,
      [],
      currentDb,
    );
    await app?.close();
    app = await startErasureApp(url, { integrity });
    await app.get(AuditSealer).sealNow();
    const recovered = await verify(url, `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect({ code: recovered.code, unsealed: recovered.out.filter((l) => l.includes(', 0 rows not sealed yet')).length }).toEqual({
      code: 0,
      unsealed: 1,
    });
  }, 90_000);

  it('names, without the public key, an unsigned link a superuser appended with triggers off, and never witnesses it at a restart', async () => {
    currentDb = 'replica';
    const url = await sealedTrail(currentDb);
    const forgedSeq = await withClient(db.url(currentDb), async (superuser) => {
      await superuser.query('SET session_replication_role = replica');
      return appendLink(superuser, () => ({ entryAuthFrom: '4000000000000000000', horizon: '4000000000000000000' }));
    });
    await app?.close();
    const stderr = new StderrCapture();
    try {
      app = await startErasureApp(url, { integrity });
      const genuineId = await logGenuine('after-1');
      await app.get(AuditSealer).sealNow();
      expect(stderr.of(AUDIT_EVENTS.forged)).toEqual([]);
      expect(stderr.of(AUDIT_EVENTS.sealed).map((line) => line.seq)).not.toContain(forgedSeq);
      const broken = stderr.of(AUDIT_EVENTS.chainBroken);
      expect(broken.map((line) => [line.foundSeq, line.code])).toEqual([[forgedSeq, 'AUDIT_SEAL_UNTRUSTED']]);
      expect(String(broken[0].detail)).toContain(`seal ${forgedSeq} is not signed, while seal ${forgedSeq - 1} before it is`);
      const report = await verify(url, '--entry-key', entryKey);
      expect(report.out.filter((l) => l.includes(genuineId))).toEqual([]);
      expect(report.anomalies).toEqual(
        expect.arrayContaining([`ANOMALY seal_signature_invalid seal ${forgedSeq}`, `ANOMALY seal_changed seal ${forgedSeq}`]),
      );
    } finally {
      stderr.restore();
    }
  }, 90_000);
});
