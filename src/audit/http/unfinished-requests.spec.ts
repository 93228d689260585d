import { UnfinishedRequests } from './unfinished-requests';

describe('UnfinishedRequests', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  const request = () => {
    const given = { count: 0 };
    return { given, startedAt: performance.now(), giveUp: () => ((given.count += 1), Promise.resolve()) };
  };

  it('gives a request up at its deadline from its start, and one done before it never', () => {
    const unfinished = new UnfinishedRequests(1000);
    const late = request();
    const done = request();
    unfinished.begin(late);
    unfinished.begin(done);
    unfinished.done(done);
    jest.advanceTimersByTime(999);
    expect([late.given.count, done.given.count]).toEqual([0, 0]);
    jest.advanceTimersByTime(1);
    expect([late.given.count, done.given.count]).toEqual([1, 0]);
  });

  it('keeps one timer for every request in flight, and gives each up at its own deadline', () => {
    const unfinished = new UnfinishedRequests(1000);
    const first = request();
    unfinished.begin(first);
    jest.advanceTimersByTime(400);
    const second = request();
    const third = request();
    unfinished.begin(second);
    unfinished.begin(third);
    expect(jest.getTimerCount()).toBe(1);
    jest.advanceTimersByTime(600);
    expect([first.given.count, second.given.count, third.given.count]).toEqual([1, 0, 0]);
    unfinished.done(third);
    jest.advanceTimersByTime(399);
    expect(second.given.count).toBe(0);
    jest.advanceTimersByTime(1);
    expect([first.given.count, second.given.count, third.given.count]).toEqual([1, 1, 0]);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('at shutdown, lets a request that ends within the grace end on its own', async () => {
    const unfinished = new UnfinishedRequests(60_000);
    const ending = request();
    unfinished.begin(ending);
    const shutdown = unfinished.giveUpAll(1000);
    jest.advanceTimersByTime(500);
    unfinished.done(ending);
    await shutdown;
    expect(ending.given.count).toBe(0);
  });

  it('at shutdown, gives every request still in flight after the grace up', async () => {
    const unfinished = new UnfinishedRequests(60_000);
    const waiting = request();
    const done = request();
    unfinished.begin(waiting);
    unfinished.begin(done);
    unfinished.done(done);
    const shutdown = unfinished.giveUpAll(1000);
    jest.advanceTimersByTime(1000);
    await shutdown;
    expect([waiting.given.count, done.given.count]).toEqual([1, 0]);
    expect(jest.getTimerCount()).toBe(0);
  });
});
