import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { readSql } from './sql-reader';

// Every query on a DataSource with audited entities is read, and an app can send texts that never
// repeat (values written into the SQL text): what the reader keeps of the texts it read stays
// bounded, whatever their number and length.

/** Bytes the JS heap holds once garbage is collected. */
function heldBytes(): number {
  (runInNewContext('gc') as () => void)();
  return process.memoryUsage().heapUsed;
}

const MB = 1024 * 1024;

describe('the SQL reader keeps what it read within bounds', () => {
  beforeAll(() => setFlagsFromString('--expose-gc'));

  it('after 4 000 distinct texts of 8 000 characters (32 MB read)', () => {
    const before = heldBytes();
    for (let i = 0; i < 4000; i += 1) readSql(`UPDATE contract SET note = '${String(i).padStart(7990, 'x')}'`);
    expect(heldBytes() - before).toBeLessThan(8 * MB);
  });

  it('after 200 000 distinct short texts', () => {
    const before = heldBytes();
    for (let i = 0; i < 200_000; i += 1) readSql(`DELETE FROM contract WHERE id = ${i}`);
    expect(heldBytes() - before).toBeLessThan(8 * MB);
  });
});
