import { AUDIT_EVENTS } from '../sinks';
import { type Seal } from './seal';
import { witnessLine } from './witness-line';

const seal: Seal = {
  seq: 7,
  version: 2,
  prevHash: Buffer.alloc(32, 1),
  lastTx: '812',
  lastId: '0190c9b8-1a2b-7c3d-8e4f-a0b1c2d3e4f5',
  horizon: '813',
  rowCount: 3,
  root: Buffer.alloc(32, 2),
  manifest: Buffer.alloc(0),
  sealedAt: Date.parse('2026-12-05T03:00:00.000Z'),
  hash: Buffer.alloc(32, 3),
  keyId: 'k-1',
  signature: Buffer.from([1, 2, 3]),
  entryAuthFrom: '700',
};

const sealFields = {
  trail: 'audit/public.audit_log',
  seq: 7,
  hash: '03'.repeat(32),
  prevHash: '01'.repeat(32),
  root: '02'.repeat(32),
  rows: 3,
  lastTx: '812',
  lastId: '0190c9b8-1a2b-7c3d-8e4f-a0b1c2d3e4f5',
  horizon: '813',
  sealedAt: '2026-12-05T03:00:00.000Z',
  keyId: 'k-1',
  signature: 'AQID',
  entryAuthFrom: '700',
};

describe('witnessLine: the stderr line the witness keeps of each seal and checkpoint', () => {
  it('names a seal audit.sealed, with every field the verifier reads back (hex hashes, base64 signature, ISO time)', () => {
    expect(witnessLine('audit/public.audit_log', seal)).toEqual({ event: AUDIT_EVENTS.sealed, fields: sealFields });
  });

  it('writes null, never a missing field, for an unsigned seal without a boundary; a seal with a null retention is a seal', () => {
    const plain = { ...seal, signature: null, keyId: null, entryAuthFrom: undefined, retention: null };
    expect(witnessLine('t', plain)).toEqual({
      event: AUDIT_EVENTS.sealed,
      fields: { ...sealFields, trail: 't', keyId: null, signature: null, entryAuthFrom: null },
    });
  });

  it('names a retention checkpoint audit.retained, with its month, its rows and the covering seal (null for an empty month)', () => {
    const checkpoint = { ...seal, rowCount: 0, retention: { month: '2026-01', rows: 42, covered: Buffer.alloc(32, 4) } };
    expect(witnessLine('t', checkpoint)).toEqual({
      event: AUDIT_EVENTS.retained,
      fields: { ...sealFields, trail: 't', rows: 0, month: '2026-01', retainedRows: 42, coveredHash: '04'.repeat(32) },
    });
    const empty = { ...checkpoint, retention: { month: '2026-02', rows: 0, covered: null } };
    expect(witnessLine('t', empty).fields).toMatchObject({ month: '2026-02', retainedRows: 0, coveredHash: null });
  });
});
