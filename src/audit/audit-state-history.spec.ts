import { AuditStateHistory, STATE_HISTORY_LIMIT } from './audit-state-history';

describe('AuditStateHistory', () => {
  it('keeps each change once, and gives the state at the window start then the changes in it', () => {
    const history = new AuditStateHistory('up', 1000);
    history.enter('down', 2000);
    history.enter('down', 2500);
    history.enter('half-open', 3000);
    history.enter('up', 4000);
    expect(history.since(2500)).toEqual([
      { at: new Date(2500).toISOString(), state: 'down' },
      { at: new Date(3000).toISOString(), state: 'half-open' },
      { at: new Date(4000).toISOString(), state: 'up' },
    ]);
  });

  it(`keeps at most ${STATE_HISTORY_LIMIT} changes, the newest`, () => {
    const history = new AuditStateHistory('up', 0);
    for (let i = 1; i <= STATE_HISTORY_LIMIT * 2; i += 1) history.enter(i % 2 ? 'down' : 'up', i);
    const kept = history.since(-1);
    expect(kept).toHaveLength(STATE_HISTORY_LIMIT);
    expect(kept[kept.length - 1]).toEqual({ at: new Date(STATE_HISTORY_LIMIT * 2).toISOString(), state: 'up' });
  });
});
