import { MAX_BACKOFF_MS, nextAttemptDelay, sealerDeadlines, sealingLag, stallWaitMs } from './sealer-timing';

describe('sealer timing', () => {
  it('derives every deadline from writeTimeoutMs', () => {
    // The default 2000 ms: a connection 5 s (the floor), statements 30 s, a round trip 32 s, a stall 32 s + 10 file operations.
    expect(sealerDeadlines(2000)).toEqual({ connectMs: 5000, statementMs: 30_000, roundTripMs: 32_000, stallMs: 52_000 });
    // Above the floor the connection takes writeTimeoutMs; the statement bound is 15 × it.
    expect(sealerDeadlines(6000)).toEqual({ connectMs: 6000, statementMs: 90_000, roundTripMs: 96_000, stallMs: 156_000 });
    expect(sealerDeadlines(5000).connectMs).toBe(5000);
    expect(sealerDeadlines(5001).connectMs).toBe(5001);
    // A tiny writeTimeoutMs: the statement bound's own floor (5 s), the round trip above the connection.
    expect(sealerDeadlines(10)).toEqual({ connectMs: 5000, statementMs: 5000, roundTripMs: 5010, stallMs: 5110 });
  });

  it('waits the interval after a success, whatever the interval', () => {
    expect(nextAttemptDelay(5000, 0)).toBe(5000);
    // Longer than the back-off's cap: a success never shortens the interval.
    expect(nextAttemptDelay(120_000, 0)).toBe(120_000);
  });

  it('doubles the interval per failure in a row, up to a minute', () => {
    expect(MAX_BACKOFF_MS).toBe(60_000);
    expect(nextAttemptDelay(1000, 1)).toBe(2000);
    expect(nextAttemptDelay(1000, 2)).toBe(4000);
    expect(nextAttemptDelay(1000, 5)).toBe(32_000);
    expect(nextAttemptDelay(1000, 6)).toBe(60_000);
    expect(nextAttemptDelay(7500, 3)).toBe(60_000);
    expect(nextAttemptDelay(7499, 3)).toBe(59_992);
    // After a failure an interval above the cap is cut to the cap.
    expect(nextAttemptDelay(120_000, 1)).toBe(60_000);
  });

  it('stops doubling after ten failures', () => {
    // 10 ms × 2^10; without the bound on the power, 20 failures would reach the cap.
    expect(nextAttemptDelay(10, 10)).toBe(10_240);
    expect(nextAttemptDelay(10, 20)).toBe(10_240);
    expect(nextAttemptDelay(10, 9)).toBe(5120);
    expect(nextAttemptDelay(10, 11)).toBe(10_240);
  });

  it('gives an attempt up once it has been idle stallMs, and not a millisecond before', () => {
    expect(stallWaitMs(0, 52_000)).toBe(52_000);
    expect(stallWaitMs(1000, 52_000)).toBe(51_000);
    expect(stallWaitMs(51_999, 52_000)).toBe(1);
    expect(stallWaitMs(52_000, 52_000)).toBeNull();
    expect(stallWaitMs(60_000, 52_000)).toBeNull();
  });

  it('reports the lag since the sealer caught up, never below 0', () => {
    expect(sealingLag(10_000, 4000)).toBe(6000);
    expect(sealingLag(4000, 4000)).toBe(0);
    // The clock set back after the sealer caught up.
    expect(sealingLag(3000, 4000)).toBe(0);
  });
});
