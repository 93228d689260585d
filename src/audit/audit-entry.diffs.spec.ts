import fc from 'fast-check';
import { createSecretKey } from 'node:crypto';
import { AuditEntryNormalizer, type AuditRecord } from './audit-entry';
import { AUDIT_DEFAULTS } from './audit-options';
import { markEntityChanges } from './diffs/entry-diffs';
import { type EntityChange } from './diffs/entity-change';
import { personalSplitter } from './privacy/personal-values';
import { personalVerdict } from './privacy/personal-verdict';
import { pseudonym, resolvePrivacyOptions } from './privacy/privacy-options';

// docs/GUIDE.md: "Diffs take at most half of `maxEntryBytes`"; DESIGN 7: an oversized entry "is
// truncated with a marker, never rejected". The rest of `changes` (a request's body, a caller's own
// values) and `metadata` are cut within their own share and never take the diffs with them.
const MAX_BYTES = 4096;
const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, MAX_BYTES);

const change = (title: string, id = 1): EntityChange => ({ type: 'Contract', id, op: 'insert', fields: { title: [null, title] } });
/** Changes as the module hands them to a row (takeEntityChanges()), and a body beside them as the interceptor puts it. */
const withDiffs = (body: unknown, entities: EntityChange[], entitiesOmitted?: number) => ({
  ...(body === undefined ? {} : { body }),
  ...markEntityChanges({ entities, ...(entitiesOmitted === undefined ? {} : { entitiesOmitted }) }),
});
const jsonBytes = (value: unknown) => Buffer.byteLength(JSON.stringify(value));
const diffsPart = (record: AuditRecord) => {
  const { entities, entitiesOmitted } = record.changes as { entities: EntityChange[]; entitiesOmitted?: number };
  return entitiesOmitted === undefined ? { entities } : { entities, entitiesOmitted };
};

/** A change without its values: what a cut change keeps. */
const names = (entity: EntityChange) => [entity.type, entity.id, entity.op, Object.keys(entity.fields ?? {})];
const title = (entity: EntityChange) => (entity.fields?.title as unknown[])[1];

describe('AuditEntryNormalizer: the diffs share of maxEntryBytes', () => {
  it('keeps the diffs whole when the body and the metadata pass maxEntryBytes, and cuts each of them with a marker', () => {
    const { record, bytes } = normalizer.normalize({
      action: 'contract_created',
      changes: withDiffs({ padding: 'n'.repeat(100_000), title: 'Small' }, [change('Small')]),
      metadata: { params: { id: 'p'.repeat(100_000) } },
    });
    expect(record.changes).toEqual({
      _truncated: true,
      originalBytes: expect.any(Number) as unknown,
      preview: expect.stringMatching(/^\{"body":\{"padding":"n+$/) as unknown,
      entities: [change('Small')],
    });
    // At least: the body was read as far as the budget went.
    expect((record.changes as { originalBytes: number }).originalBytes).toBeGreaterThan(100_000);
    expect(record.metadata).toMatchObject({ _truncated: true, preview: expect.stringMatching(/^\{"params":\{"id":"p+$/) as unknown });
    expect(bytes).toBe(jsonBytes(record));
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('keeps the diffs of a log() or record() caller whose own changes are too large, beside a value that is not an object too', () => {
    const caller = normalizer.normalize({
      action: 'import',
      changes: { ...{ rows: 'r'.repeat(50_000) }, ...withDiffs(undefined, [change('A')], 2) },
    });
    expect(caller.record.changes).toMatchObject({ _truncated: true, entities: [change('A')], entitiesOmitted: 2 });
    const onlyDiffs = normalizer.normalize({
      action: 'import',
      changes: withDiffs(undefined, [change('A')]),
      metadata: 'm'.repeat(50_000),
    });
    expect(onlyDiffs.record.changes).toEqual({ entities: [change('A')] });
    expect(onlyDiffs.bytes).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('gives no share to a look-alike the module did not make: a caller’s own `entities` is cut with the rest', () => {
    const { record } = normalizer.normalize({ action: 'a', changes: { entities: [change('x'.repeat(50_000))] } });
    expect(record.changes).toEqual({
      _truncated: true,
      originalBytes: expect.any(Number) as unknown,
      preview: expect.any(String) as unknown,
    });
  });

  it('cuts the values of diffs that alone pass half of maxEntryBytes as JSON, each change keeping its names', () => {
    // Each quote is one character to the capture's estimate and two bytes of JSON.
    const entities = [1, 2, 3].map((id) => change('"'.repeat(600), id));
    const { record, bytes } = normalizer.normalize({ action: 'a', changes: withDiffs({ padding: 'n'.repeat(10_000) }, entities, 1) });
    const kept = diffsPart(record);
    expect(kept.entitiesOmitted).toBe(1);
    expect(kept.entities.map(names)).toEqual(entities.map(names));
    expect(kept.entities.map(title)).toContainEqual({ _truncated: true, originalBytes: 1202 });
    expect(jsonBytes(kept)).toBeLessThanOrEqual(MAX_BYTES / 2);
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('stays within maxEntryBytes and keeps every diff that fits its half, for any body, metadata and diffs', () => {
    // A short pattern repeated: sizes spread over the whole range, characters JSON writes in 1 to 6 bytes.
    const text = (max: number) =>
      fc
        .tuple(fc.string({ unit: fc.constantFrom('n', '"', 'é', '\u0001', '😀'), minLength: 1, maxLength: 4 }), fc.integer({ min: 0, max }))
        .map(([pattern, size]) => pattern.repeat(Math.floor(size / pattern.length)));
    fc.assert(
      fc.property(text(20_000), text(20_000), fc.array(text(400), { maxLength: 4 }), (body, meta, titles) => {
        const entities = titles.map((title, i) => change(title, i));
        const { record, bytes } = normalizer.normalize({ action: 'a', changes: withDiffs({ body }, entities), metadata: { meta } });
        expect(bytes).toBe(jsonBytes(record));
        expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
        const kept = diffsPart(record);
        // Each change kept with its names, its value as it was or marked cut with its size; only the last ones left out.
        expect(kept.entities.map(names)).toEqual(entities.slice(0, kept.entities.length).map(names));
        kept.entities.forEach((entity, i) =>
          expect([title(entities[i]), { _truncated: true, originalBytes: jsonBytes(title(entities[i])) }]).toContainEqual(title(entity)),
        );
        expect(kept.entities).toHaveLength(entities.length);
        expect(kept.entitiesOmitted).toBeUndefined();
      }),
      { numRuns: 60 },
    );
  });
});

describe('AuditEntryNormalizer: the diffs share with personal values kept apart', () => {
  const pseudonymKey = 'k'.repeat(32);
  const privacy = resolvePrivacyOptions({
    personalData: ['changes.body.email', 'changes.entities[].fields.email'],
    pseudonymKey,
    pseudonymizeUserId: true,
  });
  const private_ = new AuditEntryNormalizer([], MAX_BYTES, undefined, personalSplitter(privacy));
  const alice = pseudonym(createSecretKey(Buffer.from(pseudonymKey)), 'user', 'alice');
  const withEmail = (email: string, id = 1): EntityChange => ({ type: 'Profile', id, op: 'update', fields: { email: ['old', email] } });
  const verdict = (record: AuditRecord) =>
    personalVerdict([record.userId, record.ip, record.userAgent], record.personal ?? null, record.commitments ?? null);
  const paths = (record: AuditRecord) =>
    (JSON.parse(record.personal as string) as { values: [unknown[], string][] }).values.map(([p]) => p);

  it('keeps the diffs, their personal values apart and committed to, when the body is cut', () => {
    const { record, bytes } = private_.normalize({
      action: 'profile_updated',
      userId: 'alice',
      changes: withDiffs({ email: 'a@example.com', padding: 'n'.repeat(20_000) }, [withEmail('b@example.com')]),
    });
    expect(record.changes).toMatchObject({ _truncated: true, entities: [{ type: 'Profile', fields: {} }] });
    expect(paths(record)).toEqual([
      ['changes', 'body', 'email'],
      ['changes', 'entities', 0, 'fields', 'email'],
    ]);
    expect(JSON.stringify(record.changes)).not.toContain('example.com');
    expect(record.userId).toBe(alice);
    expect(verdict(record)).toEqual({ erasure: null });
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('keeps the diffs when the personal values of the body are what is too large, pseudonymizing the actor once', () => {
    const { record, bytes } = private_.normalize({
      action: 'profile_updated',
      userId: 'alice',
      changes: withDiffs({ email: '"'.repeat(100_000) }, [withEmail('b@example.com')]),
    });
    expect(record.changes).toEqual({
      _truncated: true,
      originalBytes: expect.any(Number) as unknown,
      entities: [{ type: 'Profile', id: 1, op: 'update', fields: {} }],
    });
    expect(paths(record)).toEqual([['changes', 'entities', 0, 'fields', 'email']]);
    expect(record.userId).toBe(alice);
    expect(verdict(record)).toEqual({ erasure: null });
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
  });

  it('leaves the diffs out, counted, when their own personal values are still too large', () => {
    const entities = [1, 2].map((id) => withEmail('"'.repeat(700), id));
    const { record, bytes } = private_.normalize({
      action: 'profile_updated',
      userId: 'alice',
      changes: withDiffs({ email: 'x' }, entities),
    });
    expect(record.changes).toEqual({ _truncated: true, originalBytes: expect.any(Number) as unknown, entities: [], entitiesOmitted: 2 });
    expect(paths(record)).toEqual([]);
    expect(record.userId).toBe(alice);
    expect(verdict(record)).toEqual({ erasure: null });
    expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
  });
});
