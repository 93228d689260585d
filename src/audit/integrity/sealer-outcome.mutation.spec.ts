import { type ForgedRow } from './entry-auth';
import { GENESIS_HASH, type Seal, sealHash } from './seal';
import { FORGED_IN_REPORT, forgedReport, ownHashBreak, sealStep } from './sealer-outcome';

const fields = {
  seq: 7,
  version: 2,
  prevHash: GENESIS_HASH,
  lastTx: '900',
  lastId: '01937a4c-0000-7000-8000-00000000000a',
  horizon: '901',
  rowCount: 40,
  root: Buffer.alloc(32, 1),
  manifest: Buffer.alloc(24, 2),
  sealedAt: 1764300000123,
  entryAuthFrom: '812',
};
/** A seal that matches its own hash, as the sealer commits it. */
const sealed: Seal = { ...fields, hash: sealHash(fields), keyId: null, signature: null };
const unknownKey = { id: '01937a4c-0000-7000-8000-00000000000b', tx: '905', keyId: 'k2' };

function forged(n: number): ForgedRow {
  return {
    id: `01937a4c-0000-7000-8000-${String(n).padStart(12, '0')}`,
    tx: String(900 + n),
    reason: 'entry code does not match',
    occurredAt: '2026-11-28T10:00:00.000Z',
    action: 'nda_created',
    entityType: 'Nda',
    entityId: `nda-${n}`,
    userId: 'u-1',
  };
}

describe('sealer outcome: what one sealOnce result means', () => {
  it('stops at a busy lock without counting it as caught up', () => {
    expect(sealStep('busy', 100)).toEqual({ seal: null, unknownKey: null, caughtUp: false, last: true });
  });

  it('stops when nothing was left to seal, caught up', () => {
    expect(sealStep(null, 100)).toEqual({ seal: null, unknownKey: null, caughtUp: true, last: true });
  });

  it('stops before a row under an unknown entry key when no seal was made', () => {
    expect(sealStep({ seal: null, unknownKey }, 100)).toEqual({ seal: null, unknownKey, caughtUp: false, last: true });
  });

  it('goes on after a full seal, and stops caught up after one of fewer rows', () => {
    const full = { ...sealed, forged: [], unknownKey: null };
    expect(sealStep(full, 40)).toEqual({ seal: full, unknownKey: null, caughtUp: false, last: false });
    expect(sealStep(full, 41)).toEqual({ seal: full, unknownKey: null, caughtUp: true, last: false });
    expect(sealStep(full, 39)).toMatchObject({ caughtUp: false, last: false });
  });

  it('keeps the seal made before a row under an unknown key, then stops', () => {
    const before = { ...sealed, forged: [forged(1)], unknownKey };
    expect(sealStep(before, 100)).toEqual({ seal: before, unknownKey, caughtUp: true, last: true });
  });
});

describe('sealer outcome: a newest seal that does not match its own hash', () => {
  it('lets a seal that matches its own hash be continued', () => {
    expect(ownHashBreak('db/t', null, null, sealed)).toBeNull();
    expect(ownHashBreak('db/t', { seq: 7, hash: sealed.hash.toString('hex') }, '/spool/integrity/chain.json', sealed)).toBeNull();
  });

  it('names a changed field, with what the memory holds', () => {
    const moved = { ...sealed, lastId: '01937a4c-0000-7000-8000-00000000000c' };
    expect(ownHashBreak('db/public.audit_log', { seq: 6, hash: 'ab'.repeat(32) }, '/spool/integrity/chain.json', moved)).toEqual({
      trail: 'db/public.audit_log',
      rememberedSeq: 6,
      rememberedHash: 'ab'.repeat(32),
      foundSeq: 7,
      foundHash: sealed.hash.toString('hex'),
      detail: 'seal 7, the newest in the database, does not match its own hash (a field was changed): the sealer cannot continue it',
      memoryFile: '/spool/integrity/chain.json',
    });
  });

  it('takes the newest seal itself as remembered when the memory holds none', () => {
    const changed = { ...sealed, rowCount: 41 };
    expect(ownHashBreak('db/t', null, null, changed)).toMatchObject({
      rememberedSeq: 7,
      rememberedHash: sealed.hash.toString('hex'),
      foundSeq: 7,
      memoryFile: null,
    });
  });

  it('says when the sealed_at is not a finite time, even if nothing else changed', () => {
    // NaN is how a stored `infinity` is read; its hash text would be "NaN", never the one committed.
    const infinite = { ...fields, sealedAt: Number.NaN };
    const matching = { ...infinite, hash: sealHash(infinite), keyId: null, signature: null };
    expect(ownHashBreak('db/t', null, null, matching)?.detail).toBe(
      'seal 7, the newest in the database, does not match its own hash (a field was changed: its sealed_at is not a finite time): the sealer cannot continue it',
    );
    const infinity = { ...fields, sealedAt: Number.POSITIVE_INFINITY };
    expect(ownHashBreak('db/t', null, null, { ...infinity, hash: sealHash(infinity), keyId: null, signature: null })?.detail).toContain(
      'its sealed_at is not a finite time',
    );
  });
});

describe('sealer outcome: forged rows', () => {
  it('gives one line per forged row, with what the row claims and why it is forged', () => {
    const { lines } = forgedReport('db/public.audit_log', 12, [forged(1), { ...forged(2), tx: null, userId: null }]);
    expect(lines).toEqual([
      {
        trail: 'db/public.audit_log',
        auditId: '01937a4c-0000-7000-8000-000000000001',
        action: 'nda_created',
        entityType: 'Nda',
        entityId: 'nda-1',
        userId: 'u-1',
        occurredAt: '2026-11-28T10:00:00.000Z',
        tx: '901',
        seal: 12,
        reason: 'entry code does not match',
      },
      {
        trail: 'db/public.audit_log',
        auditId: '01937a4c-0000-7000-8000-000000000002',
        action: 'nda_created',
        entityType: 'Nda',
        entityId: 'nda-2',
        userId: null,
        occurredAt: '2026-11-28T10:00:00.000Z',
        tx: null,
        seal: 12,
        reason: 'entry code does not match',
      },
    ]);
  });

  it('with privacy on, names no actor in the lines or the report, and keeps the rest of each row', () => {
    const rows = [forged(1), forged(2)];
    const { lines, report } = forgedReport('db/t', 5, rows, true);
    expect(lines.map((line) => line.userId)).toEqual([null, null]);
    expect(lines.map((line) => line.auditId)).toEqual(rows.map((row) => row.id));
    expect(report.rows).toEqual(rows.map((row) => ({ ...row, userId: null })));
    expect(JSON.stringify({ lines, report })).not.toContain('u-1');
    expect(forgedReport('db/t', 5, rows, false).report.rows.map((row) => row.userId)).toEqual(['u-1', 'u-1']);
  });

  it('names at most the first 20 in the report, and counts them all', () => {
    expect(FORGED_IN_REPORT).toBe(20);
    const rows = Array.from({ length: 23 }, (_, i) => forged(i));
    const { lines, report } = forgedReport('db/t', 3, rows);
    expect(lines).toHaveLength(23);
    expect(report).toEqual({ trail: 'db/t', seal: 3, count: 23, rows: rows.slice(0, 20) });
    const few = rows.slice(0, 2);
    expect(forgedReport('db/t', 4, few).report).toEqual({ trail: 'db/t', seal: 4, count: 2, rows: few });
  });
});
