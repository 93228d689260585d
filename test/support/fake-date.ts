/**
 * Fakes `Date` alone, moving with the real clock, so that a test can jump it forward
 * (`jest.setSystemTime`) while timers, I/O and the database run in real time.
 */
export function fakeDateOnly(): void {
  jest.useFakeTimers({
    advanceTimers: true,
    doNotFake: [
      'nextTick',
      'setImmediate',
      'clearImmediate',
      'setTimeout',
      'clearTimeout',
      'setInterval',
      'clearInterval',
      'queueMicrotask',
      'hrtime',
      'performance',
    ],
  });
}
