import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { directoryLedger } from './directory-ledger';

describe('directoryLedger', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ledger-'));
  });
  afterEach(async () => {
    await rm(root, { recursive: true, force: true });
  });

  it('is one account for a directory whatever path reaches it, made yet or not', async () => {
    const real = join(root, 'audit');
    await mkdir(real);
    const linked = join(root, 'audit-link');
    await symlink(real, linked);
    const ledger = await directoryLedger(real);
    expect(await directoryLedger(`${linked}/`)).toBe(ledger);
    expect(await directoryLedger(join(linked, '..', 'audit'))).toBe(ledger);
    // A quarantine may ask before the spool has made its directory.
    const early = await directoryLedger(join(linked, 'spool'));
    await mkdir(join(real, 'spool'));
    expect(await directoryLedger(join(real, 'spool'))).toBe(early);
    expect(await directoryLedger(join(root, 'other'))).not.toBe(ledger);
  });
});
