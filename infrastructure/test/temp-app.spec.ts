import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname } from 'node:path';
import { leftoverOwner, runId } from '../../test/support/leftovers';
import { tempApps } from './temp-app';

const newApp = tempApps();

// A spec synthesizes while jest collects its tests, so a run that filters them all out (`-t`) makes
// the directory but never runs the afterAll that removes it: the run's global teardown must.
describe('tempApps', () => {
  it('synthesizes inside a directory of its own, named for this run so that its teardown removes it', () => {
    const root = dirname(newApp().outdir);
    expect(dirname(root)).toBe(tmpdir());
    expect(existsSync(root)).toBe(true);
    expect(leftoverOwner(basename(root))).toEqual({ run: runId(), pid: String(process.pid) });
  });
});
