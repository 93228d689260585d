import { createSecretKey } from 'node:crypto';
import { type Client } from 'pg';
import { ErasureCoverage } from './erasure-coverage';
import { ERASURE_ACTION, keyFingerprint, subjectPseudonym } from './erasure';
import { pseudonym } from './privacy-options';

const key = createSecretKey(Buffer.alloc(32, 7));
const otherKey = createSecretKey(Buffer.alloc(32, 9));
const ERASED_AT = Date.parse('2026-12-05T10:00:00Z');

/** A UUIDv7 id made at `ms`. */
const idAt = (ms: number) =>
  `${ms
    .toString(16)
    .padStart(12, '0')
    .replace(/^(.{8})(.{4})$/, '$1-$2')}-7000-8000-000000000001`;

/** The client of the `audit_erasure` entries given, and of checkpoints carrying `retired` (erasure id → subject). */
function clientWith(
  entries: { id: string; subject: string | null; fingerprint: string | null; tx: string }[],
  retired: Record<string, string> = {},
): Client {
  return {
    query: async (sql: string, parameters: unknown[]) => {
      if (sql.includes('has_table_privilege')) {
        expect(parameters).toEqual(['"public"."audit_seal"']);
        return { rows: [{ readable: true }] };
      }
      if (sql.includes('retention_erasures')) {
        const carried = Object.fromEntries(Object.entries(retired).map(([id, subject]) => [id, { rows: 1, subject }]));
        return { rows: [{ erasures: JSON.stringify({ erased: {}, entries: carried }) }] };
      }
      expect(parameters).toEqual([ERASURE_ACTION]);
      return { rows: entries.map((e) => ({ ...e, erasure: `erasure-${e.id}`, at: new Date(ERASED_AT) })) };
    },
  } as unknown as Client;
}

/** A row's PERSONAL_CHECK_SQL text. */
const text = (userId: string | null, personal: string, entity: [string, string] | [null, null] = [null, null]) =>
  JSON.stringify([userId, null, null, personal, '[]', ...entity]);
const VALUES = JSON.stringify({ salt: 's', values: [[['changes', 'body', 'email'], '"a@b.c"']] });

describe('ErasureCoverage: rows an erasure should have taken, still holding values', () => {
  const ofUser = { id: 'e1', subject: subjectPseudonym(key, ['u-9', null, null]), fingerprint: keyFingerprint(key), tx: '1000' };

  it('names a row whose transaction began before the erasure, and one made before it but inserted after', async () => {
    const coverage = await ErasureCoverage.load(clientWith([ofUser]), 'public.audit_log', [key]);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-9', VALUES))).toMatchObject({
      kind: 'row_not_erased',
      row: idAt(ERASED_AT - 5000),
      detail: expect.stringContaining('begun after this row'),
    });
    expect(coverage.judge(idAt(ERASED_AT - 1), 1001n, text('u-9', VALUES))).toMatchObject({
      kind: 'row_not_erased',
      detail: expect.stringContaining('made before erasure erasure-e1'),
    });
  });

  it('leaves alone a row made after the erasure, an erased row, another subject, and a row holding nothing', async () => {
    const coverage = await ErasureCoverage.load(clientWith([ofUser]), 'public.audit_log', [key]);
    expect(coverage.judge(idAt(ERASED_AT + 1), 1001n, text('u-9', VALUES))).toBeNull();
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('[ERASED]', '{"erased":"0190a0a0-0000-7000-8000-000000000000"}'))).toBeNull();
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-8', VALUES))).toBeNull();
    expect(
      coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-9', JSON.stringify({ salt: 's', values: [] })).replace('"u-9"', 'null')),
    ).toBeNull();
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, null)).toBeNull();
  });

  it('gives a row whose id is not a UUIDv7 no made time: only its transaction tells', async () => {
    const coverage = await ErasureCoverage.load(clientWith([ofUser]), 'public.audit_log', [key]);
    expect(coverage.judge('11111111-1111-4111-8111-111111111111', 1001n, text('u-9', VALUES))).toBeNull();
    expect(coverage.judge('11111111-1111-4111-8111-111111111111', 999n, text('u-9', VALUES))).not.toBeNull();
  });

  it('matches an erasure of an entity by the row entity, under the key the erasure was made with', async () => {
    const ofEntity = { id: 'e2', subject: subjectPseudonym(key, [null, 'Profile', 'p-1']), fingerprint: keyFingerprint(key), tx: '1000' };
    const coverage = await ErasureCoverage.load(clientWith([ofEntity]), 'public.audit_log', [otherKey, key]);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-1', VALUES, ['Profile', 'p-1']))?.kind).toBe('row_not_erased');
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-1', VALUES, ['Profile', 'p-2']))).toBeNull();
  });

  it('matches an erasure of a UUID entity, named in lower case, by a row that holds the id in capitals', async () => {
    const id = '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f';
    const ofEntity = { id: 'e2', subject: subjectPseudonym(key, [null, 'NDA', id]), fingerprint: keyFingerprint(key), tx: '1000' };
    const coverage = await ErasureCoverage.load(clientWith([ofEntity]), 'public.audit_log', [key]);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-1', VALUES, ['NDA', id.toUpperCase()]))?.kind).toBe('row_not_erased');
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-1', VALUES, ['NDA', 'P-1']))).toBeNull();
  });

  it('counts erasures under a key not given (or without a fingerprint) as unchecked, and names nothing for them', async () => {
    const coverage = await ErasureCoverage.load(clientWith([ofUser, { ...ofUser, id: 'e3', fingerprint: null }]), 'public.audit_log', [
      otherKey,
    ]);
    expect(coverage.unchecked).toBe(2);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-9', VALUES))).toBeNull();
  });

  it('counts an erasure entry whose subject is no pseudonym (redacted) as unchecked', async () => {
    const coverage = await ErasureCoverage.load(clientWith([{ ...ofUser, subject: '[REDACTED]' }]), 'public.audit_log', [key]);
    expect(coverage.unchecked).toBe(1);
  });

  it('matches a row holding the raw id against an erasure naming the id as pseudonymizeUserId stores it', async () => {
    const stored = pseudonym(key, 'user', 'u-9');
    const coverage = await ErasureCoverage.load(
      clientWith([{ ...ofUser, subject: subjectPseudonym(key, [stored, null, null]) }]),
      'public.audit_log',
      [key],
    );
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-9', VALUES))?.kind).toBe('row_not_erased');
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text(stored, VALUES))?.kind).toBe('row_not_erased');
  });

  it('names a row made before an erasure retention carried forward, whatever its transaction, under any key given', async () => {
    const erasureId = idAt(ERASED_AT).replace(/1$/, '9');
    const coverage = await ErasureCoverage.load(clientWith([], { [erasureId]: ofUser.subject as string }), 'public.audit_log', [
      otherKey,
      key,
    ]);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 5n, text('u-9', VALUES))).toMatchObject({
      kind: 'row_not_erased',
      detail: expect.stringContaining(`erasure ${erasureId} of its subject (its entry retired with its month)`),
    });
    expect(coverage.judge(idAt(ERASED_AT + 1), 5n, text('u-9', VALUES))).toBeNull();
    expect(coverage.judge(idAt(ERASED_AT - 5000), 5n, text('u-8', VALUES))).toBeNull();
    // Listed in the table too (its entry's erasure id): judged by its entry there (its transaction), not twice.
    const listed = await ErasureCoverage.load(
      clientWith([{ ...ofUser, id: erasureId }], { [`erasure-${erasureId}`]: ofUser.subject as string }),
      'public.audit_log',
      [key],
    );
    expect(listed.judge(idAt(ERASED_AT - 5000), 1001n, text('u-9', VALUES))?.detail).toContain('inserted after');
  });

  it('skips an erasure entry named forged, and one with no subject or a transaction id that is not a number', async () => {
    const entries = [ofUser, { ...ofUser, id: 'e4', subject: null }, { ...ofUser, id: 'e5', tx: 'x' }];
    const coverage = await ErasureCoverage.load(clientWith(entries), 'public.audit_log', [key], new Set(['e1']));
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, text('u-9', VALUES))).toBeNull();
  });
});
