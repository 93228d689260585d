import { createHash, type randomFillSync } from 'node:crypto';
import { AuditEntryNormalizer, type AuditEntry, type AuditRecord } from '../audit-entry';
import { markEntityChanges } from '../diffs/entry-diffs';
import { type EntityChange } from '../diffs/entity-change';
import { payloadJson } from '../record-json';
import { commitment, personalSplitter } from './personal-values';
import { resolvePrivacyOptions } from './privacy-options';

// The texts the seals and entry codes cover (`personal`, `commitments`, and `changes` / `metadata`
// without the personal values) must stay byte for byte what they were for the same entry and salt:
// rows written before a change to the splitter verify against the same encoding. The CSPRNG is
// replaced here by a seeded generator, so that every run draws the same salts.
let seed = 0x2545f491;
const next = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

jest.mock('node:crypto', () => {
  const actual = jest.requireActual<{ randomFillSync: typeof randomFillSync }>('node:crypto');
  return {
    ...actual,
    randomFillSync: <T extends NodeJS.ArrayBufferView>(buffer: T): T => {
      const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(next() * 256);
      return buffer;
    },
  };
});

const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)];
const TEXTS = ['a@b.c', 'x"\n\u2028y', 'back\\slash', 'ü é 😀', '', ' ', 'tab\tnul-free', 'legal-3@example.com', "o'brien"];
const leaf = (depth = 0): unknown => {
  const r = next();
  if (r < 0.35) return pick(TEXTS);
  if (r < 0.45) return Math.floor(next() * 1e6) / 100;
  if (r < 0.5) return null;
  if (r < 0.55) return next() < 0.5;
  if (depth > 2) return pick(TEXTS);
  if (r < 0.75) return Array.from({ length: Math.floor(next() * 4) }, () => leaf(depth + 1));
  return Object.fromEntries(
    Array.from({ length: Math.floor(next() * 4) }, (_, i) => [pick(['k', 'name', 'é', 'a"b', '__proto__', `f${i}`]), leaf(depth + 1)]),
  );
};
const maybe = <T>(value: () => T, p = 0.7): T | undefined => (next() < p ? value() : undefined);
const big = () => 'z'.repeat(Math.floor(next() * 3000));

/** Entries of many shapes: the personal paths present or not, at several depths, in arrays, in diffs and in metadata, some over a small maxEntryBytes. */
function entry(i: number): AuditEntry {
  const body: Record<string, unknown> = {};
  // An own `__proto__` member, as JSON.parse makes one from a request's body, beside the personal values.
  if (next() < 0.15) Object.defineProperty(body, '__proto__', { value: leaf(), enumerable: true, writable: true, configurable: true });
  if (next() < 0.7) body.email = leaf();
  if (next() < 0.5) body.contacts = [leaf(), leaf()];
  if (next() < 0.6) body.plan = leaf();
  if (next() < 0.2) body.notes = big();
  if (next() < 0.2) body['a"b\\c'] = leaf();
  const changes: Record<string, unknown> = {};
  if (next() < 0.8) changes.body = body;
  if (next() < 0.4)
    changes.list = Array.from({ length: Math.floor(next() * 3) }, () => (next() < 0.7 ? { é: leaf(), other: leaf() } : leaf()));
  let diffs: { entities: EntityChange[] } | undefined;
  if (next() < 0.5) {
    const entities = Array.from({ length: 1 + Math.floor(next() * 3) }, (_, k) =>
      next() < 0.7
        ? {
            type: 'Customer',
            id: k,
            op: 'update',
            fields: { email: [leaf(), leaf()], 'person.name': [null, leaf()], plan: [leaf(), big()] },
          }
        : { type: 'Customer', id: null, op: 'update', before: 'unknown', after: { email: leaf(), person: { name: big() }, plan: 'pro' } },
    ) as unknown as EntityChange[];
    // As the module hands its own diffs to a row (fitted to their half of maxEntryBytes), or as a caller's plain values.
    if (next() < 0.5) diffs = { entities };
    else changes.entities = entities;
  }
  return {
    action: pick(['nda_created', 'nda_updated']),
    entityType: 'NDA',
    entityId: `nda-${i}`,
    userId: maybe(() => pick(['u-1', 'u"2', 'üser', `user-${i % 7}`])),
    ip: maybe(() => pick(['10.0.0.1', '::1'])),
    userAgent: maybe(() => pick(['Mozilla/5.0', 'agent\t1'])),
    changes: diffs ? { ...changes, ...markEntityChanges(diffs) } : next() < 0.9 ? changes : undefined,
    metadata: maybe(() => ({ ip: maybe(() => leaf()), route: '/ndas', statusCode: 201, note: maybe(() => big(), 0.1) })),
  };
}

const PATHS = [
  'changes.body.email',
  'changes.body.contacts',
  'changes.a"b\\c',
  'changes.body.a"b\\c',
  'changes.list[].é',
  'changes.entities[].fields.email',
  'changes.entities[].fields.person.name',
  'metadata.ip',
];
const normalizers = [
  new AuditEntryNormalizer([], 64 * 1024, undefined, personalSplitter(resolvePrivacyOptions({ personalData: PATHS }))),
  new AuditEntryNormalizer(['plan'], 2048, undefined, personalSplitter(resolvePrivacyOptions({ personalData: PATHS }))),
  new AuditEntryNormalizer(
    [],
    4096,
    undefined,
    personalSplitter(resolvePrivacyOptions({ personalData: ['changes.body.email'], userIdPseudonym: (id: string) => `p:${id}` })),
  ),
];

/** What of a record its row stores and the seals and entry codes cover (not its id or time), and its measured size. */
const stored = (record: AuditRecord, bytes: number) => {
  const { changes, metadata } = payloadJson(record);
  return JSON.stringify([record.personal, record.commitments, changes, metadata, record.userId, record.ip, record.userAgent, bytes]);
};

describe('personalSplitter: the stored encoding of personal values', () => {
  const digest = createHash('sha256');
  const records: { record: AuditRecord; bytes: number }[] = [];
  beforeAll(() => {
    for (let i = 0; i < 3000; i++) {
      const given = entry(i);
      for (const normalizer of normalizers) {
        const { record, bytes } = normalizer.normalize(given);
        records.push({ record, bytes });
        digest.update(`${stored(record, bytes)}\n`);
      }
    }
  });

  it('writes, for the same entries and salts, the same personal, commitments, changes and metadata texts as the encoding fixed on 2026-12-06', () => {
    // The digest of 9 000 rows' stored texts, as the splitter wrote them before its allocations were cut.
    expect(digest.digest('hex')).toBe('b69529ee13ec87bf273f50ba0d7577560a452dd3f087a0fd40c1b620f72a0d10');
  });

  it('writes each row as its own values define it: personal and commitments as JSON.stringify writes them, a commitment per value, the size measured', () => {
    const wrong = records.filter(({ record, bytes }) => {
      const personal = JSON.parse(record.personal as string) as { salt: string; values: [(string | number)[], string][] };
      const actors = (
        [
          ['user_id', record.userId],
          ['ip', record.ip],
          ['user_agent', record.userAgent],
        ] as const
      ).filter(([, value]) => value !== null);
      const commitments = JSON.stringify([
        ...actors.map(([column, value]) => [[column], commitment(personal.salt, [column], value as string)]),
        ...personal.values.map(([path, text]) => [path, commitment(personal.salt, path, text)]),
      ]);
      return (
        bytes !== Buffer.byteLength(JSON.stringify(record)) ||
        JSON.stringify(personal) !== record.personal ||
        commitments !== record.commitments
      );
    });
    expect(wrong.slice(0, 3)).toEqual([]);
  });
});
