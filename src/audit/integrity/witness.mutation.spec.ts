import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWitness, type WitnessedSeal } from './witness';

const line = {
  event: 'audit.sealed',
  trail: 'audit/audit_log',
  seq: 7,
  hash: 'b'.repeat(64),
  prevHash: 'a'.repeat(64),
  rows: 12,
  lastId: '01937a4c-0000-7000-8000-00000000000c',
  sealedAt: '2026-12-04T10:00:00.000Z',
};
const seen: WitnessedSeal = {
  trail: 'audit/audit_log',
  seq: 7,
  hash: 'b'.repeat(64),
  prevHash: 'a'.repeat(64),
  rows: 12,
  lastId: '01937a4c-0000-7000-8000-00000000000c',
  sealedAt: '2026-12-04T10:00:00.000Z',
};

describe('readWitness, seal by seal', () => {
  let dir: string;
  let n = 0;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-witness-m-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const file = async (text: string) => {
    const path = join(dir, `w${n++}.log`);
    await writeFile(path, text, 'utf8');
    return path;
  };
  /** Every seal read from the texts, as `trail → seq → seals`, in plain objects. */
  const read = async (...texts: string[]) => {
    const trails = await readWitness(await Promise.all(texts.map(file)));
    return Object.fromEntries([...trails].map(([trail, seals]) => [trail, Object.fromEntries(seals)]));
  };
  const json = (value: unknown) => JSON.stringify(value);

  it('gives each seal with every field the line told, rows as a number and the texts as texts', async () => {
    expect(await read(`${json(line)}\n`)).toEqual({ 'audit/audit_log': { 7: [seen] } });
    expect(await read(`${json({ ...line, rows: '12', lastId: 42, trail: 'db/t' })}\n`)).toEqual({
      'db/t': { 7: [{ ...seen, trail: 'db/t', rows: 12, lastId: '42' }] },
    });
  });

  it("takes a retention checkpoint's audit.retained line as a link of the chain, and no other event", async () => {
    const retained = { ...line, event: 'audit.retained', month: '2026-01', retainedRows: 40, coveredHash: 'c'.repeat(64) };
    // Its month, rows and covered seal are kept: an archive of the month is held to them.
    const kept = { month: '2026-01', rows: 40, covered: 'c'.repeat(64) };
    expect(await read(`${json(retained)}\n`)).toEqual({ 'audit/audit_log': { 7: [{ ...seen, retention: kept }] } });
    expect(await read(`${json({ ...retained, coveredHash: null })}\n`)).toEqual({
      'audit/audit_log': { 7: [{ ...seen, retention: { ...kept, covered: null } }] },
    });
    expect(await read(`${json({ ...retained, month: 202601 })}\n`)).toEqual({ 'audit/audit_log': { 7: [seen] } });
    expect(await read(`${json({ ...line, event: 'audit.seal_failed' })}\n`)).toEqual({});
  });

  it('counts a seal written twice once, and keeps both of two different seals under one seq (a fork)', async () => {
    expect(await read([json(line), json(line), json({ ...line, sealedAt: 'later' })].join('\n'))).toEqual({
      'audit/audit_log': { 7: [seen] },
    });
    const otherHash = { ...line, hash: 'c'.repeat(64) };
    const otherPrev = { ...line, prevHash: 'd'.repeat(64) };
    expect(await read([json(line), json(otherHash), json(otherPrev)].join('\n'))).toEqual({
      'audit/audit_log': { 7: [seen, { ...seen, hash: 'c'.repeat(64) }, { ...seen, prevHash: 'd'.repeat(64) }] },
    });
  });

  it('keeps the trails and seqs apart, across several files', async () => {
    const result = await read(json(line), `${json({ ...line, seq: 8 })}\n${json({ ...line, trail: 'other/audit_log' })}\n`);
    expect(result).toEqual({
      'audit/audit_log': { 7: [seen], 8: [{ ...seen, seq: 8 }] },
      'other/audit_log': { 7: [{ ...seen, trail: 'other/audit_log' }] },
    });
  });

  it('takes only audit.sealed lines with an integer seq and text hashes', async () => {
    const lines = [
      { ...line, event: 'audit.buffered' },
      { ...line, event: undefined },
      { ...line, seq: '7' },
      { ...line, seq: 7.5 },
      { ...line, seq: null },
      { ...line, hash: 7 },
      { ...line, hash: undefined },
      { ...line, prevHash: null },
      { ...line, prevHash: undefined },
    ];
    expect(await read(lines.map(json).join('\n'))).toEqual({});
    expect(await read(json({ events: lines.map((l) => ({ message: json(l) })) }))).toEqual({});
  });

  it('reads lines with surrounding blanks and CRLF endings, and timestamps of any ISO form followed by any blanks', async () => {
    const text = [
      `   ${json(line)}   `,
      `2026-12-04T10:00:00+01:00\t${json({ ...line, seq: 8 })}`,
      `2026-12-04 ${json({ ...line, seq: 9 })}`,
      `1764842400000    ${json({ ...line, seq: 10 })}`,
      `9 ${json({ ...line, seq: 11 })}`,
    ].join('\r\n');
    expect(Object.keys((await read(text))['audit/audit_log'])).toEqual(['7', '8', '9', '10', '11']);
  });

  it('takes no line whose prefix is not one timestamp, nor a line that does not end its object', async () => {
    const lines = [
      `INFO ${json(line)}`,
      `T10:00 ${json(line)}`,
      `2026-12-04T10:00:00Z${json(line)}`,
      `2026-12-04T10:00:00Z x ${json(line)}`,
      `2026-12-04 10:00:00 ${json(line)}`,
      `${json(line)} `.replace(/}\s$/, '} x'),
      json(line).slice(0, -1),
      `{"event": "audit.sealed", "seq": 7} {"event": "audit.sealed"}`,
      `[${json(line)}]`,
      `>${json(line)}`,
      `x${json(line)}`,
    ];
    expect(await read(lines.join('\n'))).toEqual({});
  });

  it('reads a message that is JSON text, and a line whose message is not text as the line itself', async () => {
    expect(await read(json({ message: json(line) }))).toEqual({ 'audit/audit_log': { 7: [seen] } });
    expect(await read(json({ ...line, message: 5 }))).toEqual({ 'audit/audit_log': { 7: [seen] } });
    expect(await read(json({ ...line, message: 'sealed 12 rows' }))).toEqual({});
  });

  it('reads the filter-log-events document, whatever its blanks, and skips its events without a message', async () => {
    const doc = { events: [{ message: json(line) }, { timestamp: 1 }, { message: 5 }, { message: json({ ...line, seq: 8 }) }] };
    expect(Object.keys((await read(`\n  ${JSON.stringify(doc, null, 2)}\n\n`))['audit/audit_log'])).toEqual(['7', '8']);
  });

  it('reads a document with events that are not a list line by line, and a file of one object without a newline', async () => {
    expect(await read(json({ ...line, events: 'none' }))).toEqual({ 'audit/audit_log': { 7: [seen] } });
    expect(await read(json(line))).toEqual({ 'audit/audit_log': { 7: [seen] } });
    expect(await read('')).toEqual({});
  });

  it('reads nothing from a file that holds only null, a number, a text or a list', async () => {
    for (const text of ['null', '5', '"audit.sealed"', 'true', '[]', `[${json(line)}]`]) expect(await read(text)).toEqual({});
  });

  it('reads multibyte text as UTF-8', async () => {
    expect(await read(json({ ...line, trail: 'données/journal_d’audit' }))).toEqual({
      'données/journal_d’audit': { 7: [{ ...seen, trail: 'données/journal_d’audit' }] },
    });
  });
});
