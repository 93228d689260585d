import { COMMAND_IDLE_FLOOR_MS, commandIdleLimitMs, IDLE_MARGIN_MS, idleLimitMs, limitIdleTransaction } from './idle-in-transaction';

describe('limitIdleTransaction', () => {
  const SET = "SET LOCAL idle_in_transaction_session_timeout = '6000ms'";

  it('sets the idle limit right after a leading BEGIN, in the same string', () => {
    expect(limitIdleTransaction('BEGIN', 6000)).toBe(`BEGIN; ${SET}`);
    expect(limitIdleTransaction(`BEGIN; SET LOCAL statement_timeout = '5000ms'`, 6000)).toBe(
      `BEGIN; ${SET}; SET LOCAL statement_timeout = '5000ms'`,
    );
  });

  it('keeps the modes of the BEGIN, and START TRANSACTION in any case', () => {
    expect(limitIdleTransaction('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY', 6000)).toBe(
      `BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${SET}`,
    );
    expect(limitIdleTransaction('  start transaction read only; SELECT 1', 6000)).toBe(`  start transaction read only; ${SET}; SELECT 1`);
  });

  it('leaves every other statement as it is', () => {
    for (const sql of ['COMMIT', 'ROLLBACK', 'SELECT 1', `DO $$ BEGIN PERFORM 1; END $$`, 'BEGINNING', "SELECT 'BEGIN'"]) {
      expect(limitIdleTransaction(sql, 6000)).toBe(sql);
    }
  });

  it('writes whole milliseconds', () => {
    expect(limitIdleTransaction('BEGIN', 1500.2)).toBe("BEGIN; SET LOCAL idle_in_transaction_session_timeout = '1501ms'");
  });
});

describe('idleLimitMs', () => {
  it('is the round trip deadline plus the margin', () => {
    expect(idleLimitMs(32_000)).toBe(32_000 + IDLE_MARGIN_MS);
    expect(IDLE_MARGIN_MS).toBe(1000);
  });
});

describe('commandIdleLimitMs', () => {
  it('is three times the timeout plus the margin, at least 10 s', () => {
    expect(commandIdleLimitMs(30_000)).toBe(91_000);
    expect(commandIdleLimitMs(500)).toBe(COMMAND_IDLE_FLOOR_MS);
    expect(COMMAND_IDLE_FLOOR_MS).toBe(10_000);
  });
});
