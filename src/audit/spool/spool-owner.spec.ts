import { spawnSync } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditEntryNormalizer, type AuditRecord } from '../audit-entry';
import { FileSpool } from './file-spool';
import { encodeSpoolLine } from './spool-line';
import { type OwnerRecord } from './spool-owner';

const normalizer = new AuditEntryNormalizer(['password'], 64 * 1024);
const record = (n: number): AuditRecord => normalizer.normalize({ action: 'nda_created', entityId: `nda-${n}` }).record;
const options = { maxBytes: 1024 * 1024, segmentBytes: 64 * 1024 };
const pidNamespace = (() => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
})();

// Other processes' parts of a shared spool directory, as they leave them on disk.
describe('FileSpool sharing its directory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = join(await mkdtemp(join(tmpdir(), 'spool-owners-')), 'audit');
    await mkdir(dir, { recursive: true });
  });
  afterEach(() => rm(join(dir, '..'), { recursive: true, force: true }));

  const owner = (id: string, record: Partial<OwnerRecord>) =>
    writeFile(
      join(dir, `${id}.owner`),
      JSON.stringify({ id, hostname: 'other-host', pid: 1, pidNamespace: null, heartbeatAt: Date.now(), ...record }),
    );
  const segment = (name: string, ...ns: number[]) => writeFile(join(dir, name), ns.map((n) => encodeSpoolLine(record(n))).join(''));
  const replayAll = async (spool: FileSpool) => {
    const inserted: string[] = [];
    await spool.replay(
      async (records) => void inserted.push(...records.map((r) => r.entityId!)),
      100,
      () => undefined,
    );
    return inserted;
  };
  const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

  it("replays an older version's segments (no owner in the name)", async () => {
    await segment('audit-1732700000000-000000.ndjson', 1, 2);
    const spool = await FileSpool.open(dir, options);
    expect(spool.entries).toBe(2);
    expect(await replayAll(spool)).toEqual(['nda-1', 'nda-2']);
    expect((await readdir(dir)).filter((n) => n.endsWith('.ndjson'))).toEqual([]);
    await spool.close();
  });

  it("leaves a live owner's segments alone, and adopts them by itself once its lease has expired", async () => {
    await owner('aaaaaaaaaaaa', {});
    await segment('audit-1732700000000-000000-aaaaaaaaaaaa.ndjson', 1, 2);
    const spool = await FileSpool.open(dir, { ...options, leaseMs: 300 });
    expect(spool.entries).toBe(0);
    expect(await replayAll(spool)).toEqual([]);
    expect(await readdir(dir)).toContain('audit-1732700000000-000000-aaaaaaaaaaaa.ndjson');

    await owner('aaaaaaaaaaaa', { heartbeatAt: Date.now() - 1000 });
    for (let waited = 0; spool.entries === 0 && waited < 5000; waited += 20) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(spool.entries).toBe(2);
    expect(await readdir(dir)).not.toContain('aaaaaaaaaaaa.owner');
    expect(await replayAll(spool)).toEqual(['nda-1', 'nda-2']);
    await spool.close();
  });

  it('adopts at once the segments of an owner on this host whose process is dead, and of one that closed', async () => {
    await owner('bbbbbbbbbbbb', { hostname: hostname(), pidNamespace, pid: deadPid() });
    await segment('audit-1732700000001-000000-bbbbbbbbbbbb.ndjson', 1);
    await segment('audit-1732700000002-000000-cccccccccccc.ndjson', 2);
    const spool = await FileSpool.open(dir, options);
    expect(spool.entries).toBe(2);
    expect(await replayAll(spool)).toEqual(['nda-1', 'nda-2']);
    await spool.close();
  });

  it('keeps its claim only while open: what it leaves is adopted by the next process', async () => {
    const first = await FileSpool.open(dir, options);
    await first.append([record(1)]);
    await first.close();
    expect((await readdir(dir)).filter((n) => n.endsWith('.owner'))).toEqual([]);
    const next = await FileSpool.open(dir, options);
    expect(await replayAll(next)).toEqual(['nda-1']);
    await next.close();
  });

  it('gives each abandoned segment to exactly one of two processes adopting at once', async () => {
    await owner('dddddddddddd', { heartbeatAt: 0 });
    for (let n = 0; n < 20; n += 1) await segment(`audit-17327000000${String(n).padStart(2, '0')}-000000-dddddddddddd.ndjson`, n);
    const spools = await Promise.all([FileSpool.open(dir, options), FileSpool.open(dir, options)]);
    const inserted = (await Promise.all(spools.map(replayAll))).flat();
    expect(inserted.sort()).toEqual(Array.from({ length: 20 }, (_, n) => `nda-${n}`).sort());
    await Promise.all(spools.map((s) => s.close()));
  });
});
