import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ARCHIVE_FORMAT, archiveFiles } from '../lifecycle/archive-format';
import { archivedCounts, planArchiveErasure } from './archive-erasure';

/** An archive row's 17 fields with the given entity, user, changes, commitments and personal. */
function row(
  id: string,
  entity: [string, string],
  userId: string | null,
  changes: string,
  v2 = true,
  personal: string | null = '{"salt":"x","values":[]}',
) {
  return [
    id,
    '900',
    '0',
    'a',
    entity[0],
    entity[1],
    userId,
    'success',
    null,
    null,
    null,
    changes,
    null,
    '0',
    v2 ? '[]' : null,
    null,
    v2 ? personal : null,
  ];
}

describe('planArchiveErasure: the rows audit_log_erase would take, found in archives', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'archive-erasure-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const write = (rows: unknown[][]) => {
    const files = archiveFiles('2026-01');
    writeFileSync(join(dir, files.rows), gzipSync(rows.map((r) => `${JSON.stringify(r)}\n`).join('')));
    writeFileSync(join(dir, files.seals), JSON.stringify({ format: ARCHIVE_FORMAT, month: '2026-01', rowsFile: files.rows, seals: [] }));
  };

  it('finds an entity by its own columns and by a change of it in changes.entities, a numeric id by its digits, as jsonb containment does', async () => {
    write([
      row('r1', ['Customer', '12345678901234567890'], 'u-1', '{}'),
      row('r2', ['Nda', 'n-1'], 'u-2', '{"entities": [{"id": 12345678901234567890, "type": "Customer"}]}'),
      // As a JavaScript number this is the same as the id above; jsonb compares the digits.
      row('r3', ['Nda', 'n-2'], 'u-2', '{"entities": [{"id": 12345678901234567891, "type": "Customer"}]}'),
      row('r4', ['Nda', 'n-3'], 'u-2', '{"entities": [{"id": "12345678901234567890", "type": "Customer"}]}'),
      row('r5', ['Nda', 'n-4'], 'u-2', '{"entities": [{"id": 12345678901234567890, "type": "Supplier"}]}'),
      row('r6', ['Customer', '12345678901234567890'], 'u-3', '{}', false),
      row('r7', ['Customer', '12345678901234567890'], '[ERASED]', '{}', true, '{"erased":"0190d6a2-0000-7000-8000-000000000000"}'),
    ]);
    const forms: [string | null, string | null, string | null][] = [[null, 'Customer', '12345678901234567890']];
    const [plan] = await planArchiveErasure(dir, forms);
    expect(plan.byForm[0]).toEqual([
      { id: 'r1', state: 'erased' },
      { id: 'r2', state: 'erased' },
      { id: 'r4', state: 'erased' },
      { id: 'r6', state: 'not_erasable' },
      { id: 'r7', state: 'already_erased' },
    ]);
    expect(archivedCounts([plan], forms)([null, 'Customer', '12345678901234567890'])).toEqual({ '2026-01': 3 });
  });

  it('finds a user by each stored form of the id, each row under the one form it holds', async () => {
    write([row('r1', ['Nda', 'n-1'], 'u-1', '{}'), row('r2', ['Nda', 'n-2'], 'p1:abc', '{}'), row('r3', ['Nda', 'n-3'], 'u-10', '{}')]);
    const forms: [string | null, string | null, string | null][] = [
      ['p1:abc', null, null],
      ['u-1', null, null],
    ];
    const [plan] = await planArchiveErasure(dir, forms);
    expect(plan.byForm).toEqual([[{ id: 'r2', state: 'erased' }], [{ id: 'r1', state: 'erased' }]]);
    expect(archivedCounts([plan], forms)(['u-1', null, null])).toEqual({ '2026-01': 1 });
    expect(archivedCounts([plan], forms)(['u-2', null, null])).toEqual({});
  });

  it('answers a row with commitments but no personal value as already erased, and counts it for no erasure, as audit_log_erase leaves it', async () => {
    write([row('r1', ['Nda', 'n-1'], 'u-1', '{}', true, null), row('r2', ['Nda', 'n-2'], 'u-1', '{}')]);
    const forms: [string | null, string | null, string | null][] = [['u-1', null, null]];
    const [plan] = await planArchiveErasure(dir, forms);
    expect(plan.byForm).toEqual([
      [
        { id: 'r1', state: 'already_erased' },
        { id: 'r2', state: 'erased' },
      ],
    ]);
    expect(archivedCounts([plan], forms)(['u-1', null, null])).toEqual({ '2026-01': 1 });
  });
});
