import { AUDIT_ERROR_CODES } from '../audit.errors';
import { BUSY_FLOOR_MS, busyLimitMs, SealerBusyWatch } from './sealer-busy';
import { type SealerLockHolder } from './sealer-lock-holder';

/** A holder whose transaction's age this role may not read: the watch measures it by its own clock. */
const unreadable = (transaction: string, pid = 4242): SealerLockHolder => ({ pid, transaction, heldMs: null });

describe('SealerBusyWatch', () => {
  let now = 0;
  const watch = () => new SealerBusyWatch(60_000, () => now);
  beforeEach(() => (now = 1_000_000));

  it('says nothing of one holder found for up to the limit', () => {
    const w = watch();
    expect(w.observe(unreadable('3/7'))).toBeNull();
    now += 60_000;
    expect(w.observe(unreadable('3/7'))).toBeNull();
  });

  it('fails each attempt that finds the same holder once it has held the lock for longer than the limit', () => {
    const w = watch();
    w.observe(unreadable('3/7'));
    now += 60_001;
    const error = w.observe(unreadable('3/7'));
    expect(error).toMatchObject({
      code: AUDIT_ERROR_CODES.sealerBusy,
      message: expect.stringContaining("pid 4242 has held the sealer's lock for 60 s"),
    });
    now += 5000;
    expect(w.observe(unreadable('3/7'))?.message).toContain('for 65 s');
  });

  it('starts over once an attempt finds the lock free', () => {
    const w = watch();
    w.observe(unreadable('3/7'));
    now += 60_001;
    expect(w.observe(unreadable('3/7'))).not.toBeNull();
    expect(w.observe(null)).toBeNull();
    now += 1000;
    expect(w.observe(unreadable('3/7'))).toBeNull();
    now += 60_000;
    expect(w.observe(unreadable('3/7'))).toBeNull();
  });

  it('says nothing of a run of holders, each a new transaction, however long the run', () => {
    const w = watch();
    for (let i = 0; i < 5; i++) {
      expect(w.observe(unreadable(`3/${i}`))).toBeNull();
      now += 40_000;
    }
    expect(w.observe(unreadable('3/5', 999))).toBeNull();
  });

  it("takes the holder's transaction age from the database where it may read it, whatever its own clock says", () => {
    const w = watch();
    expect(w.observe({ pid: 7, transaction: '4/1', heldMs: 90_000 })?.message).toContain("pid 7 has held the sealer's lock for 90 s");
    const fresh = watch();
    fresh.observe({ pid: 7, transaction: '4/1', heldMs: 10 });
    now += 10 * 60_000;
    expect(fresh.observe({ pid: 7, transaction: '4/1', heldMs: 20 })).toBeNull();
  });

  it('names a prepared transaction (no pid) as the holder', () => {
    expect(watch().observe({ pid: null, transaction: '-1/5', heldMs: 61_000 })?.message).toContain('a prepared transaction has held');
  });
});

describe('busyLimitMs', () => {
  it('is twice the stall bound, at least ten minutes', () => {
    expect(busyLimitMs(52_000)).toBe(BUSY_FLOOR_MS);
    expect(BUSY_FLOOR_MS).toBe(600_000);
    expect(busyLimitMs(400_000)).toBe(800_000);
  });
});
