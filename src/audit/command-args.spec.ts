import { DEFAULT_TIMEOUT_MS, parseTimeoutMs } from './command-args';
import { runArchive } from './lifecycle/archive-command';
import { runRetention } from './lifecycle/retention-command';
import { runVerify } from './integrity/verify-command';
import { runErase } from './privacy/erase-command';

type Command = (
  argv: string[],
  env: Record<string, string | undefined>,
  io: { out(line: string): void; err(line: string): void },
) => Promise<number>;

/** Runs a command with no database in reach; its exit status and what it wrote to stderr. */
async function run(command: Command, argv: string[]) {
  const err: string[] = [];
  const status = await command(argv, {}, { out: () => undefined, err: (line) => err.push(line) });
  return { status, err: err.join('\n') };
}

const SECRET = 'a-secret-of-at-least-thirty-two-characters';

describe('the commands refuse an option given twice, rather than keep the last one silently', () => {
  it.each([
    ['audit-verify', '--public-key', runVerify as Command, ['--public-key', 'a.pem', '--public-key', 'b.pem']],
    ['audit-verify', '--from', runVerify as Command, ['--from', '2026-01-01T00:00:00Z', '--from', '2026-02-01T00:00:00Z']],
    ['audit-retention', '--months', runRetention as Command, ['--months', '72', '--months', '1']],
    ['audit-erase', '--user', runErase as Command, ['--user', 'u-1', '--user', 'u-2', '--dry-run']],
    ['audit-archive', '--month', runArchive as Command, ['--month', '2026-01', '--month', '2026-02', '--out', '/tmp/x']],
  ])('%s refuses %s twice', async (_name, option, command, argv) => {
    const { status, err } = await run(command, argv);
    expect(status).toBe(2);
    expect(err.split('\n')[0]).toBe(`${option} was given more than once: give it once`);
  });

  it('audit-verify takes --entry-key more than once, and checks every key given', async () => {
    const { status, err } = await run(runVerify as Command, ['--entry-key', 'not-a-key', '--entry-key', `k1:${SECRET}`]);
    expect(status).toBe(2);
    expect(err.split('\n')[0]).toMatch(/^--entry-key \(or AUDIT_INTEGRITY_ENTRY_KEY\) must be <id>:<secret>/);
  });

  it('audit-verify reads keys given in several --entry-key options as one list', async () => {
    const { status, err } = await run(runVerify as Command, ['--entry-key', `k1:${SECRET}`, '--entry-key', `k2:${SECRET}`]);
    expect([status, err.split('\n')[0]]).toEqual([2, '--url, AUDIT_DATABASE_URL or DATABASE_URL must be set']);
  });

  it('audit-verify --witness may still be repeated', async () => {
    const { status, err } = await run(runVerify as Command, ['--witness', 'a.log', '--witness', 'b.log']);
    expect([status, err.split('\n')[0]]).toEqual([2, '--url, AUDIT_DATABASE_URL or DATABASE_URL must be set']);
  });
});

describe('every command takes --timeout-ms, a whole number of milliseconds from 100 to 3600000', () => {
  const commands: [string, Command, string[]][] = [
    ['audit-verify', runVerify as Command, []],
    ['audit-retention', runRetention as Command, ['--months', '72']],
    ['audit-erase', runErase as Command, ['--user', 'u-1', '--dry-run']],
    ['audit-archive', runArchive as Command, ['--month', '2026-01', '--out', '/tmp/x']],
  ];

  it.each(commands)('%s refuses a bad value before reaching any database, and names the option', async (_name, command, argv) => {
    for (const bad of ['0', '99', '3600001', '1.5', '-5', '5s', '']) {
      const { status, err } = await run(command, [...argv, `--timeout-ms=${bad}`]);
      expect([status, err.split('\n')[0]]).toEqual([
        2,
        `--timeout-ms must be a whole number of milliseconds from 100 to 3600000, got ${JSON.stringify(bad)}`,
      ]);
    }
  });

  it.each(commands)('%s takes a good value, and lists the option in its usage', async (_name, command, argv) => {
    for (const good of ['100', '30000', '3600000']) {
      const { status, err } = await run(command, [...argv, '--timeout-ms', good]);
      expect([status, err.split('\n')[0]]).toEqual([2, '--url, AUDIT_DATABASE_URL or DATABASE_URL must be set']);
      expect(err).toContain('--timeout-ms <ms>');
    }
  });

  it('parseTimeoutMs: 30000 when not given', () => {
    expect([parseTimeoutMs(undefined), parseTimeoutMs('100'), parseTimeoutMs('3600000')]).toEqual([DEFAULT_TIMEOUT_MS, 100, 3_600_000]);
    expect(DEFAULT_TIMEOUT_MS).toBe(30_000);
  });
});
