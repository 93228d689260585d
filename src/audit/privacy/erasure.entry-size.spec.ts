import { createSecretKey } from 'node:crypto';
import { AuditEntryNormalizer } from '../audit-entry';
import { type ErasureContext, erasureEntryMaxBytes, eraseSubject } from './erasure';

// docs/PRIVACY.md, "The `audit_erasure` entry": the entry is never cut to fit `maxEntryBytes`; it
// counts the rows erased in every month of years 1 to 9999.
describe('the size of an erasure entry', () => {
  const key = createSecretKey(Buffer.alloc(32, 7));
  /** A context whose database erases `months` rows of the subject, one in each of that many months from year 1. */
  const context = (months: number) => {
    const inserts: unknown[][] = [];
    let erased = false;
    const ctx: ErasureContext = {
      table: '"audit_log"',
      key,
      userIdPseudonym: null,
      normalize: (entry) => new AuditEntryNormalizer([], erasureEntryMaxBytes(64 * 1024)).normalize(entry, { redact: false }).record,
      query: async (sql, parameters) => {
        if (sql.startsWith('INSERT')) {
          inserts.push(parameters);
          return [];
        }
        if (erased || parameters[4] === true) return [];
        erased = true;
        return Array.from({ length: months }, (_, i) => {
          const month = `${String(1 + Math.floor(i / 12)).padStart(4, '0')}-${String(1 + (i % 12)).padStart(2, '0')}`;
          return { id: `0190a0a0-0000-7000-8000-${String(i).padStart(12, '0')}`, occurred_at: new Date(0), state: 'erased', month };
        });
      },
    };
    return { ctx, inserts };
  };

  it('keeps months whole for a subject with rows in every month of years 1 to 9999', async () => {
    const { ctx, inserts } = context(119_988);
    const result = await eraseSubject(ctx, { userId: 'u-1', requestedBy: 'dpo' });
    expect(result.erased).toBe(119_988);
    const texts = inserts[0].filter((p): p is string => typeof p === 'string');
    const erasure = texts
      .map((t) => (t.includes('"erasure"') ? (JSON.parse(t) as { erasure?: { rows?: number; months?: object } }) : null))
      .find((c) => c)?.erasure;
    expect({ rows: erasure?.rows, months: Object.keys(erasure?.months ?? {}).length }).toEqual({ rows: 119_988, months: 119_988 });
  });

  it('keeps the erasure whole beside a reason of megabytes, which alone is cut', async () => {
    const { ctx, inserts } = context(1);
    await eraseSubject(ctx, { userId: 'u-1', reason: 'x'.repeat(17 * 1024 * 1024) });
    const texts = inserts[0].filter((p): p is string => typeof p === 'string');
    const changes = texts.map((t) => (t.includes('"erasure"') ? (JSON.parse(t) as { erasure?: { rows?: number } }) : null)).find((c) => c);
    expect(changes?.erasure?.rows).toBe(1);
    expect(texts.some((t) => t.includes('x'.repeat(17 * 1024 * 1024)))).toBe(false);
  });
});
