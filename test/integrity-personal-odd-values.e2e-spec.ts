import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { AUDIT_EVENTS, AuditSealer, AuditService } from '../src/audit';
import { eventually } from './support/app';
import { startSealingApp, verify } from './support/integrity';
import { TestPostgres } from './support/postgres';
import { AuditorHeaderGuard } from './support/query-app';
import { StderrCapture } from './support/stderr';

interface RowRead {
  items: { id: string; userId: string | null; changes: unknown; metadata: unknown; seal?: { state: string; detail?: string } }[];
}

// The other side of "personal values vouched for by their commitments": a genuine row is never
// refused. Odd but legitimate values in every personal place (the actor's columns, a path in
// `changes`, each element of `changes.entities[]`, `metadata`): unicode of every plane, a lone
// surrogate, line and paragraph separators, quotes and backslashes, numbers, null, nested arrays.
describe('genuine rows with odd personal values', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  let stderr: StderrCapture;
  const entryKey = `k1:${randomBytes(32).toString('base64')}`;

  const read = async (id: string) =>
    (await request(app.getHttpServer()).get(`/audit/rows/${id}`).set('x-auditor', 'yes').expect(200)).body as RowRead;

  beforeAll(async () => {
    stderr = new StderrCapture();
    db = await TestPostgres.start();
    app = (await startSealingApp(db.url(), {
      http: { guard: AuditorHeaderGuard },
      privacy: { personalData: ['changes.body.email', 'changes.entities[].fields.email', 'metadata.contact'] },
      integrity: { intervalMs: 3_600_000, entryKeys: [{ id: 'k1', secret: entryKey.slice(3) }] },
    })) as INestApplication<Server>;
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
    stderr?.restore();
  }, 30_000);

  const odd = ['👩\u200d💻 Zoë', 'e\u0301 é', 'line\u2028para\u2029tab\t"q"\\b', '\ud800 lone', '\u202eRTL', ' padded ', ''];

  it('seals each, reads each as sealed with its values, and audit-verify finds nothing', async () => {
    for (const [i, text] of odd.entries()) {
      await app.get(AuditService).log({
        action: 'profile_updated',
        entityType: 'Profile',
        entityId: `odd-${i}`,
        userId: text || 7,
        ip: text,
        userAgent: text,
        changes: {
          body: { email: i % 2 === 0 ? text : [[i, text], { a: null }, 1.5e300] },
          entities: [{ fields: { email: text } }, { fields: {} }, { fields: { email: null } }, { fields: { email: { deep: [text] } } }],
        },
        metadata: { contact: i % 3 === 0 ? -0 : { name: text, n: [1, [2, [3]]] } },
      });
    }
    await eventually(async () => (await db.query(`SELECT 1 FROM audit_log WHERE entity_id LIKE 'odd-%'`)).length === odd.length);
    await app.get(AuditSealer).sealNow();

    const rows = await db.query<{ id: string; entity_id: string }>(
      `SELECT id::text AS id, entity_id FROM audit_log WHERE entity_id LIKE 'odd-%' ORDER BY entity_id`,
    );
    const states = [];
    for (const row of rows) states.push([row.entity_id, (await read(row.id)).items[0].seal]);
    const [{ n }] = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM audit_log WHERE entity_id LIKE 'odd-%' AND commitments LIKE '%"entities",3,"fields","email"%'`,
    );
    expect(n).toBe(odd.length);
    expect({
      forged: stderr.of(AUDIT_EVENTS.forged).map((line) => [line.entityId, line.reason]),
      states: states.filter(([, seal]) => (seal as { state: string }).state !== 'sealed'),
      anomalies: (await verify(db.url(), '--entry-key', entryKey)).anomalies,
    }).toEqual({ forged: [], states: [], anomalies: [] });
  }, 90_000);
});
