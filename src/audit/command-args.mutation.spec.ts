import { parseCommandArgs } from './command-args';

const OPTIONS = {
  month: { type: 'string' },
  key: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
} as const;

describe('parseCommandArgs: an option given twice is refused, not silently the last one', () => {
  it('returns the values of options each given once', () => {
    expect(parseCommandArgs(['--month', '2026-01', '--help'], OPTIONS)).toEqual({ month: '2026-01', help: true });
    expect(parseCommandArgs([], OPTIONS)).toEqual({});
  });

  it('refuses a string option given twice, the same value or another, in any spelling', () => {
    for (const argv of [
      ['--month', '2026-01', '--month', '2026-02'],
      ['--month', '2026-01', '--month', '2026-01'],
      ['--month=2026-01', '--help', '--month', '2026-02'],
    ]) {
      expect(() => parseCommandArgs(argv, OPTIONS)).toThrow(new Error('--month was given more than once: give it once'));
    }
  });

  it('refuses a boolean given twice, by its long or its short name', () => {
    expect(() => parseCommandArgs(['--help', '--help'], OPTIONS)).toThrow(new Error('--help was given more than once: give it once'));
    expect(() => parseCommandArgs(['-h', '--help'], OPTIONS)).toThrow(new Error('--help was given more than once: give it once'));
  });

  it('takes an option declared multiple as often as given, in order, beside other options once each', () => {
    expect(parseCommandArgs(['--key', 'a', '--month', '2026-01', '--key', 'b', '--key', 'a'], OPTIONS)).toEqual({
      key: ['a', 'b', 'a'],
      month: '2026-01',
    });
  });

  it('still refuses what parseArgs refuses: an unknown option, a positional', () => {
    expect(() => parseCommandArgs(['--nope'], OPTIONS)).toThrow(/Unknown option '--nope'/);
    expect(() => parseCommandArgs(['stray'], OPTIONS)).toThrow(/Unexpected argument 'stray'/);
  });
});
