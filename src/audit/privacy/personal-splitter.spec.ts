import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { commitment, personalSplitter } from './personal-values';
import { resolvePrivacyOptions } from './privacy-options';

/** Every buffer the module's CSPRNG filled, as filled. */
const drawn: Buffer[] = [];

jest.mock('node:crypto', () => {
  const actual = jest.requireActual<{ randomFillSync: (buffer: Buffer) => Buffer }>('node:crypto');
  return {
    ...actual,
    randomFillSync: (buffer: Buffer) => {
      actual.randomFillSync(buffer);
      drawn.push(Buffer.from(buffer));
      return buffer;
    },
  };
});

const normalizerFor = (personalData: string[]) =>
  new AuditEntryNormalizer([], 64 * 1024, undefined, personalSplitter(resolvePrivacyOptions({ personalData })));

const saltOf = (record: AuditRecord) => (JSON.parse(record.personal as string) as { salt: string }).salt;

describe('personalSplitter: the salts of rows', () => {
  it('gives every row its own salt, each 32 bytes the CSPRNG filled and no byte of them handed out twice, across refills of the pool', () => {
    const normalizer = normalizerFor([]);
    const salts = Array.from({ length: 1000 }, (_, i) => saltOf(normalizer.normalize({ action: 'a', userId: `u-${i}` }).record));

    // 1000 salts of 32 bytes: at least 7 draws of 4 KiB.
    expect(drawn.length).toBeGreaterThanOrEqual(7);
    expect(new Set(salts).size).toBe(salts.length);
    const pool = Buffer.concat(drawn);
    const places = salts.map((salt) => {
      const bytes = Buffer.from(salt, 'base64url');
      expect(bytes).toHaveLength(32);
      expect(bytes.toString('base64url')).toBe(salt);
      return pool.indexOf(bytes);
    });
    // Each salt is 32 bytes of a draw (the draws of ids are among them), taken in order: none twice, none made otherwise.
    places.forEach((at, i) => {
      expect(at % 32).toBe(0);
      if (i > 0) expect(at).toBeGreaterThan(places[i - 1]);
    });
    expect(places[0]).toBeGreaterThanOrEqual(0);
  });
});

describe('personalSplitter: the texts of personal and commitments', () => {
  it('writes both columns exactly as JSON.stringify writes them, with a commitment per value, for keys and values that need escaping', () => {
    const normalizer = normalizerFor(['changes.a"b\\c', 'changes.list[].é', 'metadata.m']);
    const changes = { 'a"b\\c': 'x"\n\u2028y', list: [{ é: { deep: ['ü', 1, null] } }, { other: 1 }, { é: 3.5 }] };
    const { record } = normalizer.normalize({
      action: 'a',
      userId: 'u"1',
      ip: null,
      userAgent: 'agent\t1',
      changes,
      metadata: { m: true },
    });

    const personal = JSON.parse(record.personal as string) as { salt: string; values: [(string | number)[], string][] };
    expect(JSON.stringify(personal)).toBe(record.personal);
    expect(personal.values).toEqual([
      [['changes', 'a"b\\c'], JSON.stringify('x"\n\u2028y')],
      [['changes', 'list', 0, 'é'], JSON.stringify({ deep: ['ü', 1, null] })],
      [['changes', 'list', 2, 'é'], '3.5'],
      [['metadata', 'm'], 'true'],
    ]);
    const commitments = JSON.parse(record.commitments as string) as [(string | number)[], string][];
    expect(JSON.stringify(commitments)).toBe(record.commitments);
    expect(commitments).toEqual([
      [['user_id'], commitment(personal.salt, ['user_id'], 'u"1')],
      [['user_agent'], commitment(personal.salt, ['user_agent'], 'agent\t1')],
      ...personal.values.map(([path, text]) => [path, commitment(personal.salt, path, text)]),
    ]);
  });

  it('writes an empty list of values, and only the actor fields present, when no personal path matched', () => {
    const { record } = normalizerFor(['changes.email']).normalize({ action: 'a', ip: '10.0.0.1', changes: { plan: 'pro' } });
    const salt = saltOf(record);
    expect(record.personal).toBe(`{"salt":"${salt}","values":[]}`);
    expect(record.commitments).toBe(JSON.stringify([[['ip'], commitment(salt, ['ip'], '10.0.0.1')]]));
    const none = normalizerFor([]).normalize({ action: 'a' }).record;
    expect(none.commitments).toBe('[]');
  });
});

describe('personalSplitter: the places a diff holds a field', () => {
  const valuesOf = (record: AuditRecord) => (JSON.parse(record.personal as string) as { values: [(string | number)[], string][] }).values;

  it('takes an embedded property keyed by its property path (`person.name`), and one nested under its parent key', () => {
    const { record } = normalizerFor(['changes.entities[].fields.person.name']).normalize({
      action: 'a',
      changes: {
        entities: [
          { type: 'Customer', id: 1, op: 'insert', fields: { 'person.name': [null, 'Jane Roe'], 'person.age': [null, 40] } },
          { type: 'Customer', id: 2, op: 'update', fields: { person: { name: ['A', 'B'] } } },
        ],
      },
    });
    expect(valuesOf(record)).toEqual([
      [['changes', 'entities', 0, 'fields', 'person.name'], JSON.stringify([null, 'Jane Roe'])],
      [['changes', 'entities', 1, 'fields', 'person', 'name'], JSON.stringify(['A', 'B'])],
    ]);
    expect(JSON.stringify(record.changes)).not.toMatch(/Jane Roe|"B"/);
    expect(JSON.stringify(record.changes)).toContain('"person.age":[null,40]');
  });

  it('takes a field named by its `fields` path where a write by criteria put it: `after`', () => {
    const { record } = normalizerFor(['changes.entities[].fields.email', 'changes.entities[].fields.person.name']).normalize({
      action: 'a',
      changes: {
        entities: [
          {
            type: 'Customer',
            id: null,
            op: 'update',
            before: 'unknown',
            after: { email: 'j@example.org', 'person.name': 'J', plan: 'pro' },
          },
        ],
      },
    });
    expect(valuesOf(record)).toEqual([
      [['changes', 'entities', 0, 'after', 'email'], JSON.stringify('j@example.org')],
      [['changes', 'entities', 0, 'after', 'person.name'], JSON.stringify('J')],
    ]);
    expect(record.changes).toEqual({ entities: [{ type: 'Customer', id: null, op: 'update', before: 'unknown', after: { plan: 'pro' } }] });
  });
});
