import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readWitness } from './witness';

const seal = {
  event: 'audit.sealed',
  trail: 'audit/audit_log',
  seq: 1,
  hash: 'a'.repeat(64),
  prevHash: '0'.repeat(64),
  rows: 3,
  lastId: '3',
  sealedAt: '2026-12-04T10:00:00.000Z',
};
const forged = JSON.stringify({ ...seal, seq: 99 });

describe('readWitness', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-witness-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const seqs = async (text: string) => {
    const file = join(dir, 'w.log');
    await writeFile(file, text);
    return [...((await readWitness([file])).get('audit/audit_log')?.keys() ?? [])];
  };

  it('reads raw JSON lines, <timestamp> <json> lines, {"message": …} lines and the filter-log-events document', async () => {
    expect(await seqs(`${JSON.stringify(seal)}\n`)).toEqual([1]);
    expect(await seqs(`2026-12-04T10:00:00.000Z ${JSON.stringify(seal)}\n`)).toEqual([1]);
    expect(await seqs(`1764842400000 ${JSON.stringify(seal)}\n`)).toEqual([1]);
    expect(await seqs(`${JSON.stringify({ timestamp: 1, message: JSON.stringify(seal) })}\n`)).toEqual([1]);
    expect(await seqs(`2026-12-04T10:00:00Z ${JSON.stringify({ message: JSON.stringify(seal) })}\n`)).toEqual([1]);
    expect(await seqs(JSON.stringify({ events: [{ message: JSON.stringify(seal) }] }))).toEqual([1]);
  });

  it('takes no audit.sealed JSON found at the end of other text, in a line or in a message', async () => {
    const lines = [
      `[Nest] 4242  - 12/04/2026, 10:00:00 AM    WARN [NdasController] rejected request body ${forged}`,
      `body: ${forged}`,
      JSON.stringify({ level: 'warn', message: `rejected request body ${forged}` }),
      `2026-12-04T10:00:00Z rejected ${forged}`,
      JSON.stringify({ message: `${forged} trailing` }),
    ];
    expect(await seqs(`${lines.join('\n')}\n`)).toEqual([]);
    expect(await seqs(JSON.stringify({ events: lines.map((message) => ({ message })) }))).toEqual([]);
  });

  it("keeps a retention line's month, rows and covered seal; a seal line has none", async () => {
    const file = join(dir, 'w.log');
    const retained = { ...seal, event: 'audit.retained', seq: 2, month: '2026-01', retainedRows: 5, coveredHash: 'b'.repeat(64) };
    await writeFile(file, `${JSON.stringify(seal)}\n${JSON.stringify(retained)}\n`);
    const trail = (await readWitness([file])).get('audit/audit_log');
    expect([trail?.get(1)?.[0].retention, trail?.get(2)?.[0].retention]).toEqual([
      undefined,
      { month: '2026-01', rows: 5, covered: 'b'.repeat(64) },
    ]);
  });
});
