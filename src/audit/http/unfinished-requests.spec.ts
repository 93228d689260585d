import { UnfinishedRequests } from './unfinished-requests';

describe('UnfinishedRequests', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const request = () => {
    const given = { count: 0 };
    return { given, giveUp: () => ((given.count += 1), Promise.resolve()) };
  };

  it('gives a waiting request up at its deadline, and one done before it never', () => {
    const unfinished = new UnfinishedRequests(1000);
    const late = request();
    const done = request();
    unfinished.wait(late);
    unfinished.wait(done);
    unfinished.done(done);
    jest.advanceTimersByTime(999);
    expect([late.given.count, done.given.count]).toEqual([0, 0]);
    jest.advanceTimersByTime(1);
    expect([late.given.count, done.given.count]).toEqual([1, 0]);
  });

  it('gives every request still waiting up at shutdown, and leaves no timer of one done', async () => {
    const unfinished = new UnfinishedRequests(60_000);
    const waiting = request();
    const done = request();
    unfinished.wait(waiting);
    unfinished.wait(done);
    unfinished.done(done);
    expect(jest.getTimerCount()).toBe(1);
    await unfinished.giveUpAll();
    expect([waiting.given.count, done.given.count]).toEqual([1, 0]);
  });
});
