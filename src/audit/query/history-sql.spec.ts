import { entityRefs, historyReads } from './history-sql';

describe('historyReads', () => {
  it('looks an id up as text, and as a number when it is the text of a whole number', () => {
    expect(entityRefs('Contract', '42')).toEqual(['[{"type":"Contract","id":"42"}]', '[{"type":"Contract","id":42}]']);
    expect(entityRefs('Contract', '-7')[1]).toBe('[{"type":"Contract","id":-7}]');
    // 16 digits, a safe integer: JavaScript wrote it exactly.
    expect(entityRefs('Contract', '1234567890123456')[1]).toBe('[{"type":"Contract","id":1234567890123456}]');
    for (const id of ['042', '4.2', '1e3', '12345678901234567', 'a-1']) {
      expect(entityRefs('Contract', id)).toEqual([`[{"type":"Contract","id":${JSON.stringify(id)}}]`, null]);
    }
  });

  it('gives the same read as literal SQL and as a prepared statement whose text holds no value', () => {
    const after = { occurredUs: 1764300000123456n, id: '019ac5f0-8a1e-7000-9f3c-2b1d4e5f6a7b' };
    const { select, prepared } = historyReads('"public"."audit_log"', "O'Neil", '42', after, 50);
    let inlined = prepared.text;
    prepared.args.forEach((arg, i) => (inlined = inlined.replaceAll(new RegExp(`\\$${i + 1}(?![0-9])`, 'g'), arg)));
    expect(inlined).toBe(select);
    expect(prepared.text).not.toMatch(/O''Neil|42|1764300000123456|019ac5f0/);
    expect(select).toContain(`changes ? 'entities'`);
    // Another entity, another cursor: the same statement.
    expect(historyReads('"public"."audit_log"', 'NDA', 'x', { ...after, occurredUs: 5n }, 50).prepared.name).toBe(prepared.name);
  });

  it('looks a UUID up canonical, as given and in capitals, each spelling once; any other id as given', () => {
    const lower = 'a1b2c3d4-e5f6-4711-8899-aabbccddeeff';
    const mixed = 'A1B2C3D4-e5f6-4711-8899-aabbccddeeff';
    const spelled = (id: string): string[] => historyReads('"public"."audit_log"', 'Device', id, undefined, 50).prepared.args;
    expect(spelled(mixed)).toEqual(expect.arrayContaining([`'${lower}'`, `'${mixed}'`, `'${lower.toUpperCase()}'`]));
    expect(spelled(lower)).toEqual(expect.arrayContaining([`'${lower}'`, `'${lower.toUpperCase()}'`]));
    expect(spelled(lower).filter((arg) => arg.toLowerCase() === `'${lower}'`)).toHaveLength(2);
    expect(spelled('ORDER-42').filter((arg) => arg.toLowerCase().includes('order-42'))).toEqual([
      `'ORDER-42'`,
      `'[{"type":"Device","id":"ORDER-42"}]'`,
    ]);
    // Two UUIDs spelled alike share one statement.
    const name = (id: string): string => historyReads('"public"."audit_log"', 'Device', id, undefined, 50).prepared.name;
    expect(name('0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f')).toBe(name(lower));
  });
});
