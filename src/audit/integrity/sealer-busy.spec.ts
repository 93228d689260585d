import { AUDIT_ERROR_CODES } from '../audit.errors';
import { BUSY_FLOOR_MS, busyLimitMs, SealerBusyWatch } from './sealer-busy';

describe('SealerBusyWatch', () => {
  let now = 0;
  const watch = () => new SealerBusyWatch(60_000, () => now);
  beforeEach(() => (now = 1_000_000));

  it('says nothing of a lock found taken for up to the limit', () => {
    const w = watch();
    expect(w.observe(true)).toBeNull();
    now += 60_000;
    expect(w.observe(true)).toBeNull();
  });

  it('fails each attempt that finds the lock taken once it has been taken for longer than the limit', () => {
    const w = watch();
    w.observe(true);
    now += 60_001;
    const error = w.observe(true);
    expect(error).toMatchObject({ code: AUDIT_ERROR_CODES.sealerBusy, message: expect.stringContaining('for 60 s') });
    now += 5000;
    expect(w.observe(true)?.message).toContain('for 65 s');
  });

  it('starts over once an attempt finds the lock free', () => {
    const w = watch();
    w.observe(true);
    now += 60_001;
    expect(w.observe(true)).not.toBeNull();
    expect(w.observe(false)).toBeNull();
    now += 1000;
    expect(w.observe(true)).toBeNull();
    now += 60_000;
    expect(w.observe(true)).toBeNull();
  });
});

describe('busyLimitMs', () => {
  it('is twice the stall bound, at least ten minutes', () => {
    expect(busyLimitMs(52_000)).toBe(BUSY_FLOOR_MS);
    expect(BUSY_FLOOR_MS).toBe(600_000);
    expect(busyLimitMs(400_000)).toBe(800_000);
  });
});
