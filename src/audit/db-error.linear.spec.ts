import { sanitizeDbError } from './db-error';

// A driver's message can echo a client's value (`invalid input syntax for type uuid: "…"`);
// its sanitizing must stay linear in the message's length.
const SIZE = 200_000;
const elapsedMs = (run: () => unknown): number => {
  const start = performance.now();
  run();
  return performance.now() - start;
};

describe('sanitizeDbError reads a 200k-character message within 1 s', () => {
  it('a value like a URL scheme with no "://" (a-a-a-…)', () => {
    const message = `invalid input syntax for type uuid: "${'a-'.repeat(SIZE / 2)}"`;
    expect(elapsedMs(() => sanitizeDbError(new Error(message), []))).toBeLessThan(1000);
  });

  it.each([
    ['an IPv6 address of many groups, no port', () => 'a:'.repeat(SIZE / 2)],
    ['many "::" runs', () => '1::'.repeat(SIZE / 3)],
    ['many IPv6 addresses with a zone, each before a port of letters', () => '::1%eth0:x '.repeat(SIZE / 11)],
    ['many lookups of long names', () => `getaddrinfo ENOTFOUND ${'d'.repeat(300)} `.repeat(SIZE / 323)],
    ['many bracketed addresses, never closed', () => '[::1'.repeat(SIZE / 4)],
  ])('a value like %s', (_label, make) => {
    const message = `invalid input syntax for type uuid: "${make()}"`;
    expect(elapsedMs(() => sanitizeDbError(new Error(message), []))).toBeLessThan(1000);
  });

  it('a value like a dotted host name with no port (a.a.a.…)', () => {
    const message = `invalid input syntax for type uuid: "${'a.'.repeat(SIZE / 2)}"`;
    expect(elapsedMs(() => sanitizeDbError(new Error(message), []))).toBeLessThan(1000);
  });
});
