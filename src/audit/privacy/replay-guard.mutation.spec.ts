import { createSecretKey } from 'node:crypto';
import { type AuditRecord } from '../audit-entry';
import { keyFingerprint, subjectPseudonym } from './erasure';
import { pseudonym } from './privacy-options';
import { heldBackByErasure } from './replay-guard';

const key = createSecretKey(Buffer.from('a-pseudonym-key-of-at-least-32-characters'));
const otherKey = createSecretKey(Buffer.from('another-pseudonym-key-of-32-characters!!'));
const T = Date.parse('2026-11-28T10:00:00.000Z');
const MINUTE = 60_000;

/** A UUIDv7 whose time is `ms`. */
function v7(ms: number, n = 1): string {
  const hex = ms.toString(16).padStart(12, '0');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7000-8000-${String(n).padStart(12, '0')}`;
}

/** A record made at `T` by user u-1, with personal values unless told otherwise. */
function record(fields: Partial<AuditRecord> = {}): AuditRecord {
  return {
    id: v7(T),
    occurredAt: new Date(T).toISOString(),
    action: 'nda_created',
    entityType: 'Nda',
    entityId: 'nda-1',
    userId: 'u-1',
    outcome: 'success',
    ip: null,
    userAgent: null,
    requestId: null,
    changes: {},
    metadata: null,
    ...fields,
  };
}

interface Erasure {
  subject?: string | null;
  erasure?: string | null;
  fingerprint?: string | null;
  at?: number;
}

/**
 * Runs the guard against a table holding `erasures` and the rows `present`, and retention
 * checkpoints carrying `retired` (erasure id → subject); what it held back and what it asked of
 * the audit table.
 */
async function guard(
  records: AuditRecord[],
  erasures: Erasure[],
  keys = [key],
  present: string[] = [],
  retired: Record<string, string> = {},
) {
  const asked: unknown[][] = [];
  const query = (sql: string, parameters: unknown[]) => {
    if (sql.includes('has_table_privilege')) return Promise.resolve([{ readable: Object.keys(retired).length > 0 }]);
    if (sql.includes('retention_erasures')) {
      const entries = Object.fromEntries(Object.entries(retired).map(([id, subject]) => [id, { rows: 1, subject }]));
      return Promise.resolve([{ erasures: JSON.stringify({ erased: {}, entries }) }]);
    }
    asked.push(parameters);
    if (sql.includes('ANY(')) return Promise.resolve(present.map((id) => ({ id })));
    return Promise.resolve(
      erasures.map((e) => ({
        subject: e.subject ?? null,
        erasure: e.erasure === undefined ? 'e-1' : e.erasure,
        fingerprint: e.fingerprint === undefined ? keyFingerprint(key) : e.fingerprint,
        occurred_at: new Date(e.at ?? T + MINUTE),
      })),
    );
  };
  const held = await heldBackByErasure(query, '"audit_log"', records, keys);
  return { held, asked };
}

const user = (id: string, under = key) => subjectPseudonym(under, [id, null, null]);
const entity = (type: string | null, id: string | null, under = key) => subjectPseudonym(under, [null, type, id]);
const MATCHED = 'its subject was erased since it was written (erasure e-1)';
const NOT_GIVEN =
  'erasure e-1 was made since it was written under a pseudonym key not given here, or names no subject it can read, so it cannot tell whose';
const NO_KEY =
  'erasures were made since it was written, and without the pseudonym key (AUDIT_PRIVACY_PSEUDONYM_KEY or AUDIT_INTEGRITY_ENTRY_KEY) replay cannot tell whose';

describe('heldBackByErasure: the records a replay must not bring back', () => {
  it('asks nothing for records without personal values', async () => {
    const none = record({ userId: null });
    expect(await guard([none], [{ fingerprint: null }])).toEqual({ held: [], asked: [] });
  });

  it.each([
    ['a user', { userId: 'u-1' }],
    ['an ip', { ip: '10.0.0.7' }],
    ['a user agent', { userAgent: 'curl/8' }],
    ['personal values kept apart', { personal: '{"salt":"s","values":[]}' }],
  ])('takes a record with %s as one with personal values', async (_what, fields: Partial<AuditRecord>) => {
    const { held } = await guard([record({ userId: null, ...fields })], [{ fingerprint: null }]);
    expect(held).toEqual([{ id: v7(T), reason: NOT_GIVEN }]);
  });

  it('holds back a record whose user or entity an erasure after it names, under a key it holds', async () => {
    expect((await guard([record()], [{ subject: user('u-1') }])).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    expect((await guard([record()], [{ subject: entity('Nda', 'nda-1') }])).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    expect((await guard([record()], [{ subject: user('u-1'), erasure: null }])).held).toEqual([
      { id: v7(T), reason: 'its subject was erased since it was written (erasure unknown)' },
    ]);
    expect(
      (await guard([record()], [{ subject: user('u-1', otherKey), fingerprint: keyFingerprint(otherKey) }], [key, otherKey])).held,
    ).toEqual([{ id: v7(T), reason: MATCHED }]);
  });

  it('holds back a record that holds the change of an entity an erasure after it names, by text or numeric id', async () => {
    const changed = (id: unknown) =>
      record({ changes: { entities: [{ type: 'Contract', id, op: 'update', fields: { counterparty: ['a', 'b'] } }] } });
    expect((await guard([changed('c-7')], [{ subject: entity('Contract', 'c-7') }])).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    expect((await guard([changed(7)], [{ subject: entity('Contract', '7') }])).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    expect((await guard([changed(null)], [{ subject: entity('Contract', 'null') }])).held).toEqual([]);
    expect((await guard([changed('c-8')], [{ subject: entity('Contract', 'c-7') }])).held).toEqual([]);
  });

  it('holds back a record an earlier version wrote with a UUID entity id in capitals, erased in lower case', async () => {
    const id = '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f';
    const spelled = id.toUpperCase();
    const erased = [{ subject: entity('Nda', id) }];
    expect((await guard([record({ entityId: spelled })], erased)).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    const changed = record({ userId: null, ip: '10.0.0.7', changes: { entities: [{ type: 'Nda', id: spelled, op: 'update' }] } });
    expect((await guard([changed], erased)).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    // And by an erasure that named the capitals (one an earlier version made).
    expect((await guard([record({ entityId: spelled })], [{ subject: entity('Nda', spelled) }])).held).toEqual([
      { id: v7(T), reason: MATCHED },
    ]);
    expect((await guard([record({ entityId: 'NDA-1' })], [{ subject: entity('Nda', 'nda-1') }])).held).toEqual([]);
  });

  it('lets through a record no erasure under a key it holds names', async () => {
    const erasures = [{ subject: user('u-2') }, { subject: entity('Nda', 'nda-2') }];
    expect((await guard([record()], erasures)).held).toEqual([]);
    // Without a user, an entity needs its type and id both to be named.
    const typeless = record({ userId: null, ip: '10.0.0.7', entityType: null });
    expect((await guard([typeless], [{ subject: entity(null, 'nda-1') }])).held).toEqual([]);
    const idless = record({ userId: null, ip: '10.0.0.7', entityId: null });
    expect((await guard([idless], [{ subject: entity('Nda', null) }])).held).toEqual([]);
  });

  it('holds back every record with personal values before an erasure under a key it lacks, or with no fingerprint', async () => {
    expect((await guard([record()], [{ subject: user('u-1'), fingerprint: keyFingerprint(otherKey) }])).held).toEqual([
      { id: v7(T), reason: NOT_GIVEN },
    ]);
    expect((await guard([record()], [{ subject: user('u-9'), fingerprint: null }])).held).toEqual([{ id: v7(T), reason: NOT_GIVEN }]);
    expect((await guard([record()], [{ subject: user('u-9'), erasure: null, fingerprint: null }])).held).toEqual([
      { id: v7(T), reason: NOT_GIVEN.replace('e-1', 'unknown') },
    ]);
    // A subject that is no pseudonym (redacted by an older version, or missing) cannot tell whose either.
    expect((await guard([record()], [{ subject: '[REDACTED]' }])).held).toEqual([{ id: v7(T), reason: NOT_GIVEN }]);
    expect((await guard([record()], [{ subject: null }])).held).toEqual([{ id: v7(T), reason: NOT_GIVEN }]);
    expect((await guard([record()], [{ subject: user('u-1') }], [])).held).toEqual([{ id: v7(T), reason: NO_KEY }]);
  });

  it('holds back a record whose user, raw, an erasure names as pseudonymizeUserId stores it', async () => {
    const stored = pseudonym(key, 'user', 'u-1');
    expect((await guard([record()], [{ subject: user(stored) }])).held).toEqual([{ id: v7(T), reason: MATCHED }]);
    // A stored pseudonym is not pseudonymized again.
    expect((await guard([record({ userId: stored })], [{ subject: user(pseudonym(key, 'user', stored)) }])).held).toEqual([]);
  });

  it('reads the erasures retention carried forward, made after the record, under each key it holds', async () => {
    const after = v7(T + MINUTE, 9);
    expect((await guard([record()], [], [key], [], { [after]: user('u-1') })).held).toEqual([
      { id: v7(T), reason: `its subject was erased since it was written (erasure ${after})` },
    ]);
    expect((await guard([record()], [], [otherKey, key], [], { [after]: user('u-1') })).held).toHaveLength(1);
    // Another subject, or an erasure made before the record (a minute early for the clocks): let through.
    expect((await guard([record()], [], [key], [], { [after]: user('u-2') })).held).toEqual([]);
    expect((await guard([record()], [], [key], [], { [v7(T - 2 * MINUTE, 9)]: user('u-1') })).held).toEqual([]);
    // Without keys: every record before it is held back; an id that tells no time is after everything.
    expect((await guard([record()], [], [], [], { [after]: user('u-2') })).held).toEqual([{ id: v7(T), reason: NO_KEY }]);
    expect((await guard([record()], [], [key], [], { 'not-a-uuid': user('u-1') })).held).toHaveLength(1);
    // A carried subject that is no pseudonym is not read.
    expect((await guard([record()], [], [], [], { [after]: '[REDACTED]' })).held).toEqual([]);
  });

  it('names the matching erasure before an unknown one', async () => {
    const erasures = [{ erasure: 'e-0', fingerprint: null }, { subject: user('u-1') }];
    expect((await guard([record()], erasures)).held).toEqual([{ id: v7(T), reason: MATCHED }]);
  });

  it('never holds back a record already in the table, and asks for the records with personal values only', async () => {
    const kept = record({ id: v7(T, 2) });
    const none = record({ id: v7(T, 3), userId: null });
    const { held, asked } = await guard([record(), none, kept], [{ fingerprint: null }], [key], [v7(T)]);
    expect(held).toEqual([{ id: v7(T, 2), reason: NOT_GIVEN }]);
    expect(asked[1]).toEqual([[v7(T), v7(T, 2)]]);
  });

  it('asks no second question when no erasure was made since', async () => {
    const { held, asked } = await guard([record()], []);
    expect(held).toEqual([]);
    expect(asked).toHaveLength(1);
  });
});

describe('heldBackByErasure: when a record was made', () => {
  it('reads the erasures since the oldest record, a minute early for the clocks', async () => {
    const later = record({ id: v7(T + 5 * MINUTE, 2), occurredAt: new Date(T + 5 * MINUTE).toISOString() });
    const { asked } = await guard([later, record()], []);
    expect(asked[0]).toEqual(['audit_erasure', new Date(T - MINUTE).toISOString()]);
  });

  it('takes the earlier of its occurredAt and the time in its UUIDv7 id', async () => {
    const early = record({ occurredAt: new Date(T - 10 * MINUTE).toISOString() });
    expect((await guard([early], []))['asked'][0]).toEqual(['audit_erasure', new Date(T - 11 * MINUTE).toISOString()]);
    const set = record({ id: v7(T - 10 * MINUTE) });
    expect((await guard([set], []))['asked'][0]).toEqual(['audit_erasure', new Date(T - 11 * MINUTE).toISOString()]);
    const upper = record({ id: v7(T - 10 * MINUTE).toUpperCase() });
    expect((await guard([upper], []))['asked'][0]).toEqual(['audit_erasure', new Date(T - 11 * MINUTE).toISOString()]);
  });

  it('takes the time of an id that is not a UUIDv7 for unknown, and the other time alone', async () => {
    const v4 = record({ id: '01937a4c-0000-4000-8000-000000000001', occurredAt: new Date(T).toISOString() });
    expect((await guard([v4], []))['asked'][0]).toEqual(['audit_erasure', new Date(T - MINUTE).toISOString()]);
    const untimed = record({ occurredAt: 'not a time' });
    expect((await guard([untimed], []))['asked'][0]).toEqual(['audit_erasure', new Date(T - MINUTE).toISOString()]);
  });

  it.each([
    ['no time at all', { id: '01937a4c-0000-4000-8000-000000000001', occurredAt: 'not a time' }],
    ['a year before 1', { id: '01937a4c-0000-4000-8000-000000000001', occurredAt: '0000-06-01T00:00:00Z' }],
  ])('reads every erasure for a record with %s, and holds it back behind any', async (_what, fields) => {
    const { held, asked } = await guard([record(fields)], [{ fingerprint: null, at: Date.parse('0001-01-01T00:00:00Z') }]);
    expect(asked[0]).toEqual(['audit_erasure', '-infinity']);
    expect(held).toHaveLength(1);
  });

  it('reads every erasure for a record made at the first instant of year 10000', async () => {
    const occurredAt = new Date(Date.parse('+010000-01-01T00:00:00Z') + MINUTE).toISOString();
    const { asked } = await guard([record({ id: '01937a4c-0000-4000-8000-000000000001', occurredAt })], []);
    expect(asked[0]).toEqual(['audit_erasure', '-infinity']);
  });

  it('takes no time from an id whose version is not 7, wherever a 7 stands in it', async () => {
    const v4 = record({ id: '01937a4c-0000-4000-8000-000000000007', occurredAt: new Date(T).toISOString() });
    expect((await guard([v4], []))['asked'][0]).toEqual(['audit_erasure', new Date(T - MINUTE).toISOString()]);
  });

  it('reads every erasure for a record from after year 9999', async () => {
    const { asked } = await guard([record({ id: '01937a4c-0000-4000-8000-000000000001', occurredAt: '+010000-06-01T00:00:00Z' })], []);
    expect(asked[0]).toEqual(['audit_erasure', '-infinity']);
  });

  it('reads from year 1 itself', async () => {
    const first = Date.parse('0001-01-01T00:00:00Z');
    const { asked } = await guard(
      [record({ id: '01937a4c-0000-4000-8000-000000000001', occurredAt: new Date(first + MINUTE).toISOString() })],
      [],
    );
    expect(asked[0]).toEqual(['audit_erasure', '0001-01-01T00:00:00.000Z']);
  });

  it('holds a record back behind an erasure up to a minute before it, not before that', async () => {
    const erasure = (at: number) => [{ subject: user('u-1'), at }];
    expect((await guard([record()], erasure(T - MINUTE))).held).toHaveLength(1);
    expect((await guard([record()], erasure(T - MINUTE - 1))).held).toEqual([]);
    expect((await guard([record()], [{ fingerprint: null, at: T - MINUTE - 1 }])).held).toEqual([]);
  });
});
