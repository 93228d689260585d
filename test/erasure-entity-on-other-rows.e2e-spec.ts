import { Body, Controller, type INestApplication, Param, Patch } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type Server } from 'node:http';
import { Client } from 'pg';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { randomBytes } from 'node:crypto';
import { Audited, AuditQueryService, AuditSealer, AuditService } from '../src/audit';
import { Contract, startDiffsApp } from './support/diffs-app';
import { sealingKeys, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { StderrCapture } from './support/stderr';

// docs/PRIVACY.md: "`{ entityType, entityId }` erases every row about that entity", and "Diffs of
// `@AuditedEntity()` entities sit at `changes.entities[].fields.<property>`". A request that
// changes two contracts in one transaction records both diffs on its one row, whose entity
// columns name the first. Erasing the second contract leaves none of its personal values
// readable, wherever the trail holds its diff: the row about the first is erased whole (one salt
// for all its values: keeping it for the first's would let the second's be tried against their
// commitments), the erasure entry counts it, and the trail still verifies.
@Controller()
class TransferController {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  @Patch('contracts/:id/take-over/:other')
  @Audited('contract_taken_over', { entityType: 'Contract', entityId: { param: 'id' } })
  takeOver(@Param('id') id: string, @Param('other') other: string, @Body() body: { counterparty: string }): Promise<void> {
    return this.db.transaction(async (manager) => {
      const taker = await manager.findOneByOrFail(Contract, { id });
      const given = await manager.findOneByOrFail(Contract, { id: other });
      taker.counterparty = body.counterparty;
      given.counterparty = `${given.counterparty} (handed over)`;
      await manager.save([taker, given]);
    });
  }
}

describe('erasing an entity whose diff sits on another entity’s row', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const keys = sealingKeys();
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = await startDiffsApp(
      db,
      {
        mode: 'sync',
        privacy: { personalData: ['changes.body.counterparty', 'changes.entities[].fields.counterparty'] },
        integrity: {
          enabled: true,
          intervalMs: 3_600_000,
          signingKey: keys.privatePem,
          entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }],
        },
      },
      { controllers: [TransferController] },
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  });

  it('leaves no value of the erased contract readable on any row', async () => {
    const create = async (counterparty: string) =>
      ((await request(app.getHttpServer()).post('/contracts').send({ title: 'Lease', counterparty }).expect(201)).body as { id: string })
        .id;
    const given = await create('Jane Roe');
    const taker = await create('Acme Ltd');
    await request(app.getHttpServer()).patch(`/contracts/${taker}/take-over/${given}`).send({ counterparty: 'Acme Group' }).expect(200);
    /** The actions of the rows a read shows the person's name on. */
    const showingName = async () =>
      (await app.get(AuditQueryService).search({}, { limit: 500 })).items
        .filter((row) => JSON.stringify(row).includes('Jane Roe'))
        .map((row) => row.action);
    expect((await showingName()).sort()).toEqual(['contract_created', 'contract_taken_over']);

    const [before] = await db.query<{ id: string; personal: string; user_id: string | null; ip: string | null; user_agent: string | null }>(
      `SELECT id::text AS id, personal, user_id, ip, user_agent FROM audit_log WHERE action = 'contract_taken_over'`,
    );
    const dry = await app.get(AuditService).erase({ entityType: 'Contract', entityId: given, dryRun: true });
    expect(dry.erased).toBe(2);
    const result = await app.get(AuditService).erase({ entityType: 'Contract', entityId: given, requestedBy: 'dpo', reason: 'request #9' });
    expect(result.erased).toBe(2);
    expect(await showingName()).toEqual([]);
    const [takeOver] = await db.query<{ personal: string }>(`SELECT personal FROM audit_log WHERE action = 'contract_taken_over'`);
    expect(takeOver.personal).toBe(`{"erased":"${result.erasureId}"}`);
    // The taker's own rows keep their values: only the row holding the erased contract's diff is taken.
    const kept = await db.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE entity_id = $1 AND personal NOT LIKE '{"erased":%'`,
      [taker],
    );
    expect(kept.map((row) => row.action)).toEqual(['contract_created']);

    const total = async () => (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_log'))[0].n;
    const sealed = async () => (await db.query<{ n: number }>('SELECT coalesce(sum(row_count), 0)::int AS n FROM audit_seal'))[0].n;
    while ((await sealed()) < (await total())) await app.get(AuditSealer).sealNow();
    const report = await verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    expect(report.out).toContain('erasure: 2 rows erased under 1 erasure entries');
    expect(report.out).toContain('result: CLEAN');

    // audit-verify knows the row should have been taken: its values written back are named.
    const owner = new Client({ connectionString: db.url() });
    await owner.connect();
    try {
      await owner.query('SET session_replication_role = replica');
      await owner.query(`UPDATE audit_log SET personal = $2, user_id = $3, ip = $4, user_agent = $5 WHERE id = $1`, [
        before.id,
        before.personal,
        before.user_id,
        before.ip,
        before.user_agent,
      ]);
    } finally {
      await owner.end();
    }
    const named = await verify(db.url(), `--public-key=${keys.publicPem}`, '--entry-key', entryKey);
    // The erasure's count no longer adds up either: its other row is named for that.
    expect(named.out.filter((line) => line.startsWith('ANOMALY'))).toEqual([
      expect.stringMatching(new RegExp(`^ANOMALY row_not_erased row ${before.id}: its subject was erased by erasure ${result.erasureId}`)),
      expect.stringMatching(
        /^ANOMALY row_erased_unaccounted row .*: one of 1 rows erased under erasure .*, whose audit_erasure entry counts 2$/,
      ),
    ]);
  }, 60_000);
});
