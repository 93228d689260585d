import { retentionMonthSql } from '../lifecycle/legacy-range';
import { SEAL_COLUMNS_SQL, sealStatementMs, sealTableOf, toSeal, trailName } from './seal-store';

describe('seal-store, its pure parts', () => {
  it('bounds each sealing statement at 15 × writeTimeoutMs, never below 5 s', () => {
    expect(sealStatementMs(2000)).toBe(30_000);
    expect(sealStatementMs(100)).toBe(5000);
    expect(sealStatementMs(334)).toBe(5010);
    expect(sealStatementMs(333)).toBe(5000);
  });

  it('puts the seal table beside the audit table, in its schema, quoted', () => {
    expect(sealTableOf('audit_log')).toBe('"audit_seal"');
    expect(sealTableOf('audit.audit_log')).toBe('"audit"."audit_seal"');
    expect(sealTableOf('my db.a"b.audit_log')).toBe('"my db"."a""b"."audit_seal"');
  });

  it('names a trail by its database and table', () => {
    expect(trailName('audit', 'audit_log')).toBe('audit/audit_log');
    expect(trailName('db', 'ops.audit_log')).toBe('db/ops.audit_log');
  });

  it('reads a seal row as selected with SEAL_COLUMNS_SQL', () => {
    const bytes = (n: number) => Buffer.alloc(32, n);
    const row = {
      seq: '12',
      version: 2,
      prev_hash: bytes(1),
      last_tx: '900',
      last_id: '01937a4c-0000-7000-8000-00000000000a',
      horizon: '901',
      row_count: '40',
      root: bytes(2),
      manifest: bytes(3),
      sealed_at: '1764842400123',
      hash: bytes(4),
      key_id: 'abcd',
      signature: bytes(5),
      entry_auth_from: '812',
    };
    expect(toSeal(row)).toEqual({
      seq: 12,
      version: 2,
      prevHash: bytes(1),
      lastTx: '900',
      lastId: '01937a4c-0000-7000-8000-00000000000a',
      horizon: '901',
      rowCount: 40,
      root: bytes(2),
      manifest: bytes(3),
      sealedAt: 1764842400123,
      hash: bytes(4),
      keyId: 'abcd',
      signature: bytes(5),
      entryAuthFrom: '812',
      // A seal, not a retention checkpoint (its retention columns NULL).
      retention: null,
    });
    const bare = toSeal({ ...row, last_tx: null, sealed_at: null, key_id: null, signature: null, entry_auth_from: null });
    expect(bare).toMatchObject({ lastTx: null, keyId: null, signature: null, entryAuthFrom: null });
    expect(bare.sealedAt).toBeNaN();
    const older = toSeal({ ...row, last_tx: undefined, key_id: undefined, signature: undefined, entry_auth_from: undefined });
    expect(older).toMatchObject({ lastTx: null, keyId: null, signature: null, entryAuthFrom: null });
    // A retention checkpoint: its month, the rows removed with it, and the hash of the seal that covered them.
    const checkpoint = { ...row, retention_month: '2026-01', retention_rows: '5000', retention_covered: bytes(6) };
    expect(toSeal(checkpoint).retention).toEqual({ month: '2026-01', rows: 5000, covered: bytes(6), erasures: null });
    expect(toSeal({ ...checkpoint, retention_erasures: '{"erased":{}}' }).retention?.erasures).toBe('{"erased":{}}');
    expect(toSeal({ ...checkpoint, retention_covered: null }).retention).toEqual({
      month: '2026-01',
      rows: 5000,
      covered: null,
      erasures: null,
    });
    expect(toSeal({ ...checkpoint, retention_covered: undefined }).retention).toEqual({
      month: '2026-01',
      rows: 5000,
      covered: null,
      erasures: null,
    });
  });

  it('selects every column toSeal reads', () => {
    for (const column of [
      'seq',
      'version',
      'prev_hash',
      'last_tx',
      'last_id',
      'horizon',
      'row_count',
      'root',
      'manifest',
      'sealed_at',
      'hash',
      'key_id',
      'signature',
      'entry_auth_from',
      'retention_month',
      'retention_rows',
      'retention_covered',
    ]) {
      expect(SEAL_COLUMNS_SQL).toMatch(new RegExp(`\\b${column}\\b`));
    }
    // The month as its text, which toSeal takes as it is.
    expect(SEAL_COLUMNS_SQL).toContain(`${retentionMonthSql('retention_month')} AS retention_month`);
  });
});
