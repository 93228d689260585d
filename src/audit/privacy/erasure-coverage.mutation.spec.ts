import { createSecretKey } from 'node:crypto';
import { type Client } from 'pg';
import { ErasureCoverage } from './erasure-coverage';
import { keyFingerprint, subjectPseudonym } from './erasure';

const key = createSecretKey(Buffer.alloc(32, 7));
const ERASED_AT = Date.parse('2026-12-05T10:00:00Z');
const VALUES = JSON.stringify({ salt: 's', values: [[['changes', 'body', 'email'], '"a@b.c"']] });
const NO_VALUES = JSON.stringify({ salt: 's', values: [] });

/** A UUIDv7 id made at `ms`. */
const idAt = (ms: number) => {
  const hex = ms.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8)}-7000-8000-000000000001`;
};

interface Entry {
  id: string;
  subject: string | null;
  fingerprint: string | null;
  erasure: string | null;
  tx: string | null;
}

/** An `audit_erasure` entry of `subject` made under `key`, in transaction 1000, as the query returns it. */
const entry = (subject: [string | null, string | null, string | null], more: Partial<Entry> = {}): Entry => ({
  id: 'entry-1',
  subject: subjectPseudonym(key, subject),
  fingerprint: keyFingerprint(key),
  erasure: 'erasure-1',
  tx: '1000',
  ...more,
});

async function coverageOf(entries: Entry[]): Promise<ErasureCoverage> {
  const client = { query: async () => ({ rows: entries.map((e) => ({ ...e, at: new Date(ERASED_AT) })) }) } as unknown as Client;
  return ErasureCoverage.load(client, 'public.audit_log', [key]);
}

/** A row's PERSONAL_CHECK_SQL text: actor columns, personal, commitments, entity. */
const text = (
  actor: [string | null, string | null, string | null],
  personal: string | null,
  entity: [string | null, string | null] = [null, null],
) => JSON.stringify([...actor, personal, '[]', ...entity]);
const ofUser = (userId: string | null, personal: string | null = VALUES) => text([userId, null, null], personal);

const IN_FLIGHT = (erasure: string) =>
  `its subject was erased by erasure ${erasure}, begun after this row's transaction, yet it holds its personal values (its transaction was open during the erasure, or the values were written back)`;
const LATE = (erasure: string) => `made before erasure ${erasure} of its subject and inserted after it, with its personal values`;

describe('ErasureCoverage, each rule as audit-verify reports it', () => {
  it('words each finding in full, naming the erasure (or the entry, for an erasure without an id)', async () => {
    const coverage = await coverageOf([entry(['u-9', null, null])]);
    const row = idAt(ERASED_AT - 5000);
    expect(coverage.judge(row, 999n, ofUser('u-9'))).toEqual({ kind: 'row_not_erased', row, detail: IN_FLIGHT('erasure-1') });
    expect(coverage.judge(row, 1001n, ofUser('u-9'))).toEqual({ kind: 'row_not_erased', row, detail: LATE('erasure-1') });
    const unnamed = await coverageOf([entry(['u-9', null, null], { erasure: null })]);
    expect(unnamed.judge(row, 999n, ofUser('u-9'))?.detail).toBe(IN_FLIGHT('entry-1'));
  });

  it("leaves alone a row of the erasure's own transaction, and a row without a transaction id", async () => {
    const coverage = await coverageOf([entry(['u-9', null, null])]);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 1000n, ofUser('u-9'))).toBeNull();
    expect(coverage.judge(idAt(ERASED_AT - 5000), null, ofUser('u-9'))).toBeNull();
  });

  it('names a row made before the erasure by a millisecond, not one made in the same millisecond', async () => {
    const coverage = await coverageOf([entry(['u-9', null, null])]);
    expect(coverage.judge(idAt(ERASED_AT - 1), 1001n, ofUser('u-9'))?.detail).toBe(LATE('erasure-1'));
    expect(coverage.judge(idAt(ERASED_AT), 1001n, ofUser('u-9'))).toBeNull();
  });

  it('reads the made time of an id in capitals, and gives none to an id of another version', async () => {
    const coverage = await coverageOf([entry(['u-9', null, null])]);
    expect(coverage.judge(idAt(ERASED_AT - 1).toUpperCase(), 1001n, ofUser('u-9'))?.kind).toBe('row_not_erased');
    // A UUIDv4 whose first digits would read as a time before the erasure, with a 7 further on.
    expect(coverage.judge(`${idAt(ERASED_AT - 5000).slice(0, 14)}4000-8000-700000000001`, 1001n, ofUser('u-9'))).toBeNull();
  });

  it('keeps every erasure of one subject: a row is judged against each', async () => {
    const coverage = await coverageOf([
      entry(['u-9', null, null], { id: 'entry-1', erasure: 'erasure-1', tx: '500' }),
      entry(['u-9', null, null], { id: 'entry-2', erasure: 'erasure-2', tx: '1000' }),
    ]);
    // Written in the first erasure's own transaction (so not judged against it): only the second names it.
    expect(coverage.judge(idAt(ERASED_AT - 1), 500n, ofUser('u-9'))?.detail).toBe(IN_FLIGHT('erasure-2'));
    // Made in the very millisecond of the erasures: not before them, so new.
    expect(coverage.judge(idAt(ERASED_AT), 400n, ofUser('u-9'))).toBeNull();
    // Made after both (a new row, though its transaction began before the second): neither names it.
    expect(coverage.judge(idAt(ERASED_AT + 1), 999n, ofUser('u-9'))).toBeNull();
  });

  it('judges a row by its entity when it has no user, and when its actor columns hold nothing but its values do', async () => {
    const coverage = await coverageOf([entry([null, 'Profile', 'p-1'])]);
    const row = idAt(ERASED_AT - 5000);
    expect(coverage.judge(row, 999n, text([null, null, null], VALUES, ['Profile', 'p-1']))?.kind).toBe('row_not_erased');
    expect(coverage.judge(row, 999n, text([null, '10.0.0.1', null], NO_VALUES, ['Profile', 'p-1']))?.kind).toBe('row_not_erased');
    expect(coverage.judge(row, 999n, text([null, null, 'curl/8'], NO_VALUES, ['Profile', 'p-1']))?.kind).toBe('row_not_erased');
    // Nothing personal left: no values, actor columns empty or erased.
    expect(coverage.judge(row, 999n, text([null, null, null], NO_VALUES, ['Profile', 'p-1']))).toBeNull();
    expect(coverage.judge(row, 999n, text(['[ERASED]', '[ERASED]', null], NO_VALUES, ['Profile', 'p-1']))).toBeNull();
    expect(coverage.judge(row, 999n, text([null, null, null], null, ['Profile', 'p-1']))).toBeNull();
  });

  it('never takes an erased actor for a user named [ERASED]', async () => {
    const coverage = await coverageOf([entry(['[ERASED]', null, null])]);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, ofUser('[ERASED]'))).toBeNull();
  });

  it('takes a transaction id of 1 to 20 digits only', async () => {
    const row = idAt(ERASED_AT - 1);
    const at = async (tx: string) => (await coverageOf([entry(['u-9', null, null], { tx })])).judge(row, 999n, ofUser('u-9'));
    expect((await at('99999999999999999999'))?.kind).toBe('row_not_erased');
    expect(await at('999999999999999999999')).toBeNull();
    expect((await at('1000'))?.kind).toBe('row_not_erased');
    expect((await coverageOf([entry(['u-9', null, null], { tx: '5' })])).judge(row, 4n, ofUser('u-9'))?.kind).toBe('row_not_erased');
    expect(await at('')).toBeNull();
    await expect(coverageOf([entry(['u-9', null, null], { tx: '1000x' })])).resolves.toBeInstanceOf(ErasureCoverage);
    await expect(coverageOf([entry(['u-9', null, null], { tx: 'x1000' })])).resolves.toBeInstanceOf(ErasureCoverage);
    expect(await at('1000x')).toBeNull();
    expect(await at('x1000')).toBeNull();
    expect(await at('1 000')).toBeNull();
  });

  it('skips an entry with no transaction id, and counts nothing unchecked for skipped entries', async () => {
    const coverage = await coverageOf([
      entry(['u-9', null, null], { tx: null }),
      entry(['u-9', null, null], { subject: null, fingerprint: 'other' }),
    ]);
    expect(coverage.unchecked).toBe(0);
    expect(coverage.judge(idAt(ERASED_AT - 5000), 999n, ofUser('u-9'))).toBeNull();
  });
});
