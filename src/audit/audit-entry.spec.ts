import type * as NestCommon from '@nestjs/common';
import fc from 'fast-check';
import type * as AuditEntryModule from './audit-entry';
import { AuditEntryNormalizer } from './audit-entry';
import { AUDIT_DEFAULTS } from './audit-options';
import { compileRedactor, REDACTED } from './json-safe';
import { OCCURRED_AT_RANGE, ORIGINAL_OCCURRED_AT_KEY } from './occurred-at';
import { uuidv7 } from './uuidv7';

const MAX_BYTES = 4096;
const normalizer = new AuditEntryNormalizer(AUDIT_DEFAULTS.redactKeys, MAX_BYTES);
const secret = 'S3CRET-VALUE-do-not-log';
const isRedacted = compileRedactor(AUDIT_DEFAULTS.redactKeys);

describe('AuditEntryNormalizer', () => {
  it('fills id, timestamp and outcome and keeps the caller context', () => {
    const occurredAt = new Date('2026-01-02T03:04:05.000Z');
    const { record } = normalizer.normalize({
      action: 'nda_created',
      entityType: 'NDA',
      entityId: 42,
      userId: 'u1',
      occurredAt,
      changes: { title: 'x' },
    });
    expect(record).toEqual({
      id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/),
      occurredAt: '2026-01-02T03:04:05.000Z',
      action: 'nda_created',
      entityType: 'NDA',
      entityId: '42',
      userId: 'u1',
      outcome: 'success',
      ip: null,
      userAgent: null,
      requestId: null,
      changes: { title: 'x' },
      metadata: null,
    });
  });

  it('redacts configured keys at any depth, whatever their case or separators', () => {
    const key = fc.constantFrom('password', 'Password', 'api_key', 'x-api-key', 'accessToken', 'AUTHORIZATION', 'cookie', 'client_secret');
    const tree = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(fc.string(), tie('node'), { maxKeys: 3 }),
      ),
    })).node;
    fc.assert(
      fc.property(tree, key, fc.array(fc.string({ minLength: 1 }), { maxLength: 4 }), (base, secretKey, path) => {
        const payload: Record<string, unknown> = { base };
        let cursor = payload;
        for (const segment of path) cursor = (cursor[`n_${segment}`] = {}) as Record<string, unknown>;
        cursor[secretKey] = secret;
        const { record } = normalizer.normalize({ action: 'a', changes: payload, metadata: [payload] });
        const json = JSON.stringify(record);
        expect(json).not.toContain(secret);
        expect(json).toContain(REDACTED);
      }),
    );
  });

  it('turns hostile values into JSON PostgreSQL accepts, without throwing', () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const throwing = Object.defineProperty({}, 'boom', {
      enumerable: true,
      get: () => {
        throw new Error('getter');
      },
    });
    const { record } = normalizer.normalize({
      action: 'a',
      userId: 'line1\nline2\u0000',
      changes: {
        circular,
        big: 12345678901234567890n,
        fn: () => 1,
        sym: Symbol('s'),
        nan: Number.NaN,
        when: new Date(0),
        bad: new Date('x'),
        buf: Buffer.from('abc'),
        nul: 'a\u0000b',
        lone: '\ud800',
        err: new Error('e'),
        throwing,
        shared: [circular.name, circular.name],
      },
    });
    expect(record.userId).toBe('line1\nline2\uFFFD');
    expect(record.changes).toEqual({
      circular: { name: 'loop', self: '[Circular]' },
      big: '12345678901234567890',
      fn: '[Function]',
      sym: 'Symbol(s)',
      nan: 'NaN',
      when: '1970-01-01T00:00:00.000Z',
      bad: 'Invalid Date',
      buf: '[Buffer 3 bytes]',
      nul: 'a\uFFFDb',
      lone: '\uFFFD',
      err: { name: 'Error', message: 'e' },
      throwing: { boom: '[Unreadable]' },
      shared: ['loop', 'loop'],
    });
  });

  it('keeps a __proto__ key as data, redacting under it as anywhere else', () => {
    const changes = JSON.parse('{"title":"t","__proto__":{"isAdmin":true,"password":"p"},"nested":[{"__proto__":"x"}]}') as unknown;
    const { record } = normalizer.normalize({ action: 'a', changes });
    expect(JSON.stringify(record.changes)).toBe(
      '{"title":"t","__proto__":{"isAdmin":true,"password":"[REDACTED]"},"nested":[{"__proto__":"x"}]}',
    );
    expect(Object.getPrototypeOf(record.changes)).toBe(Object.prototype);
  });

  it('never throws and never exceeds maxEntryBytes, marking what it truncated', () => {
    fc.assert(
      fc.property(
        fc.anything({ withBigInt: true, withDate: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }),
        fc.string({ unit: 'binary', maxLength: 3000 }),
        (changes, text) => {
          const { record, bytes } = normalizer.normalize({
            action: 'a',
            userId: text,
            userAgent: text,
            changes: { changes, text: text.repeat(3) },
            metadata: text,
          });
          const json = JSON.stringify(record);
          expect(Buffer.byteLength(json)).toBe(bytes);
          expect(bytes).toBeLessThanOrEqual(MAX_BYTES);
          expect(json).not.toContain('\\u0000');
        },
      ),
    );
    const { record } = normalizer.normalize({ action: 'a', changes: { blob: 'x'.repeat(100_000) } });
    expect(record.changes).toEqual({ _truncated: true, originalBytes: 100_011, preview: expect.stringMatching(/^\{"blob":"x+$/) });
  });

  it('keeps an occurredAt of the years 0001-9999 as given, and otherwise the time of log() with the original in metadata', () => {
    const inRange = (d: Date) => d >= OCCURRED_AT_RANGE.min && d <= OCCURRED_AT_RANGE.max;
    fc.assert(
      fc.property(
        fc.date({ noInvalidDate: false }),
        fc.option(
          fc.dictionary(
            fc.stringMatching(/^[a-z_]+$/).filter((key) => !isRedacted(key)),
            fc.integer(),
            { maxKeys: 3 },
          ),
        ),
        (date, metadata) => {
          const before = Date.now();
          const { record } = normalizer.normalize({ action: 'a', occurredAt: date, metadata: metadata ?? undefined });
          const stored = new Date(record.occurredAt);
          expect(record.occurredAt).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
          if (inRange(date)) {
            expect(stored.getTime()).toBe(date.getTime());
            expect(record.metadata).toEqual(metadata ?? null);
          } else {
            expect(stored.getTime()).toBeGreaterThanOrEqual(before);
            const original = Number.isNaN(date.getTime()) ? 'Invalid Date' : date.toISOString();
            expect(record.metadata).toEqual({ [ORIGINAL_OCCURRED_AT_KEY]: original, ...metadata });
            expect(Object.keys(record.metadata as object)[0]).toBe(ORIGINAL_OCCURRED_AT_KEY);
          }
        },
      ),
    );
  });

  it('keeps a replaced occurredAt beside metadata that is not a plain object, and in the preview of truncated metadata', () => {
    const far = new Date('+200000-01-01T00:00:00.000Z');
    const key = ORIGINAL_OCCURRED_AT_KEY;
    const original = '+200000-01-01T00:00:00.000Z';
    expect(normalizer.normalize({ action: 'a', occurredAt: far, metadata: [1] }).record.metadata).toEqual({
      [key]: original,
      metadata: [1],
    });
    expect(normalizer.normalize({ action: 'a', occurredAt: far, metadata: { [key]: 'mine' } }).record.metadata).toEqual({
      [key]: original,
      metadata: { [key]: 'mine' },
    });
    expect(normalizer.normalize({ action: 'a', occurredAt: '2026-01-01' as never }).record.metadata).toEqual({ [key]: '2026-01-01' });
    const { record } = normalizer.normalize({ action: 'a', occurredAt: far, metadata: { blob: 'x'.repeat(10_000) } });
    expect(record.metadata).toMatchObject({ _truncated: true, preview: expect.stringContaining(original) });
  });

  it('names an entry with an empty action "unknown", so that its spool line can be replayed', () => {
    expect(normalizer.normalize({ action: '' }).record.action).toBe('unknown');
  });

  it('accepts garbage in place of an entry and still produces a storable record', () => {
    const { record } = normalizer.normalize(null as never);
    expect(record).toMatchObject({ action: 'unknown', outcome: 'success', changes: null });
  });
});

describe('user ids', () => {
  const user = { id: 7, email: 'a@example.com', password: secret, tokens: { refresh: secret } };

  it('keeps a string, a number or a bigint id as text', () => {
    expect(normalizer.normalize({ action: 'a', userId: 'u-1' }).record.userId).toBe('u-1');
    expect(normalizer.normalize({ action: 'a', userId: 42 }).record.userId).toBe('42');
    expect(normalizer.normalize({ action: 'a', userId: 12345678901234567890n as never }).record.userId).toBe('12345678901234567890');
  });

  it('stores null for an object, or anything else that is not an id, and warns once per process without the value', () => {
    jest.isolateModules(() => {
      // Fresh modules: the "once per process" flag starts unset.
      const { Logger } = jest.requireActual<typeof NestCommon>('@nestjs/common');
      const { AuditEntryNormalizer: Fresh } = jest.requireActual<typeof AuditEntryModule>('./audit-entry');
      const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      try {
        const fresh = new Fresh(AUDIT_DEFAULTS.redactKeys, MAX_BYTES);
        const others: unknown[] = [user, [7], JSON.stringify(user), '[7]', true, () => 7, Symbol('u'), Number.NaN, new Date(0)];
        for (const userId of others) {
          const { record } = fresh.normalize({ action: 'a', userId: userId as never, changes: { title: 't' } });
          expect(record.userId).toBeNull();
          expect(JSON.stringify(record)).not.toContain(secret);
        }
        new Fresh(AUDIT_DEFAULTS.redactKeys, MAX_BYTES).normalize({ action: 'a', userId: user as never });
        expect(warn).toHaveBeenCalledTimes(1);
        expect(String(warn.mock.calls[0][0])).toMatch(/userId/);
        expect(JSON.stringify(warn.mock.calls)).not.toContain(secret);
      } finally {
        warn.mockRestore();
      }
    });
  });
});

describe('uuidv7', () => {
  it('makes version-7 ids that sort in creation order, even within one millisecond', () => {
    const now = Date.now();
    const ids = Array.from({ length: 10_000 }, () => uuidv7(now));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    const embeddedMs = parseInt(ids[0].replace('-', '').slice(0, 12), 16);
    expect(Math.abs(embeddedMs - now)).toBeLessThan(1000);
  });

  it('writes the version, the variant and the counter where RFC 9562 puts them', () => {
    const now = Date.UTC(2026, 10, 28);
    let fresh = uuidv7;
    // A module of its own: the ids of other tests leave its clock at a later millisecond.
    jest.isolateModules(() => ({ uuidv7: fresh } = jest.requireActual<{ uuidv7: typeof uuidv7 }>('./uuidv7')));
    const ids = Array.from({ length: 5000 }, () => fresh(now + 1000));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // 4096 ids fill a millisecond's counter; the next ones borrow the following millisecond.
    const ms = (id: string) => parseInt(id.replace('-', '').slice(0, 12), 16);
    expect(ms(ids[0])).toBe(now + 1000);
    expect(ids[0].slice(14, 18)).toBe('7000');
    expect(ids[4095].slice(14, 18)).toBe('7fff');
    expect(ms(ids[4096])).toBe(now + 1001);
    expect(ids[4096].slice(14, 18)).toBe('7000');
    expect(new Set(ids.map((id) => id.slice(19))).size).toBe(ids.length);
  });

  it('puts each id its own 8 random bytes, as hex, across refills of the random pool', () => {
    // Known "random" bytes: fill k of the 4 KiB pool holds (k * 7 + i) & 0xff at index i.
    let fills = 0;
    let fresh = uuidv7;
    jest.isolateModules(() => {
      jest.doMock('node:crypto', () => ({
        randomFillSync: (buffer: Buffer) => {
          for (let i = 0; i < buffer.length; i++) buffer[i] = (fills * 7 + i) & 0xff;
          fills += 1;
          return buffer;
        },
      }));
      ({ uuidv7: fresh } = jest.requireActual<{ uuidv7: typeof uuidv7 }>('./uuidv7'));
    });
    jest.dontMock('node:crypto');
    // 512 ids use one fill: 1300 ids cross two refills.
    const ids = Array.from({ length: 1300 }, () => fresh(Date.UTC(2026, 10, 28)));
    ids.forEach((id, n) => {
      const fill = Math.floor(n / 512);
      const bytes = Buffer.from(Array.from({ length: 8 }, (_, j) => (fill * 7 + (n % 512) * 8 + j) & 0xff));
      bytes[0] = 0x80 | (bytes[0] & 0x3f);
      const hex = bytes.toString('hex');
      expect(id.slice(19)).toBe(`${hex.slice(0, 4)}-${hex.slice(4)}`);
    });
    expect(fills).toBe(3);
  });
});
