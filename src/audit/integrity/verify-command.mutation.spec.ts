import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVerify, VERIFY_USAGE } from './verify-command';

const SECRET = 'a-secret-of-at-least-thirty-two-characters';

/** Runs the command; what it wrote to each stream and its exit status. */
async function verify(argv: string[], env: Record<string, string | undefined> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await runVerify(argv, env, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { status, out: out.join('\n'), err: err.join('\n') };
}
const usageError = (message: string) => ({ status: 2, out: '', err: `${message}\n${VERIFY_USAGE}` });
const NO_URL = usageError('--url, AUDIT_DATABASE_URL or DATABASE_URL must be set');

describe('audit-verify, its arguments (no database reached)', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'audit-verify-args-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('prints its usage with --help or -h and exits 0', async () => {
    expect(await verify(['--help'])).toEqual({ status: 0, out: VERIFY_USAGE, err: '' });
    expect(await verify(['-h'])).toEqual({ status: 0, out: VERIFY_USAGE, err: '' });
    expect(VERIFY_USAGE).toMatch(/^usage: npm run audit:verify/);
    expect(VERIFY_USAGE).toMatch(
      /exit status: 0 clean, 1 anomalies found, 2 usage or connection error, 3 the database did not answer within --timeout-ms$/,
    );
  });

  it('exits 2 without a database URL, after checking the other arguments', async () => {
    expect(await verify([])).toEqual(NO_URL);
    expect(await verify(['--url', ''], { AUDIT_DATABASE_URL: '', DATABASE_URL: '' })).toEqual(NO_URL);
  });

  it('takes --jobs from 1 to 32 only', async () => {
    for (const jobs of ['0', '33', '-1', '1.5', 'x', '', ' 4']) {
      expect(await verify([`--jobs=${jobs}`])).toEqual(usageError(`--jobs must be an integer from 1 to 32, got ${JSON.stringify(jobs)}`));
    }
    for (const jobs of ['1', '32', '04']) expect(await verify([`--jobs=${jobs}`])).toEqual(NO_URL);
  });

  it('refuses an unknown option or a positional argument', async () => {
    expect((await verify(['--nope'])).status).toBe(2);
    expect((await verify(['stray'])).status).toBe(2);
    expect((await verify(['--nope'])).err).toContain(VERIFY_USAGE);
    expect((await verify(['stray'])).err).toMatch(/^Unexpected argument 'stray'/);
  });

  it('takes --from and --to as times', async () => {
    expect(await verify(['--from', '2026-11-28T00:00:00Z', '--to', '2026-12-01'])).toEqual(NO_URL);
    expect(await verify(['--from', 'yesterday'])).toEqual(
      usageError('--from must be a time such as 2026-11-28T00:00:00Z, got "yesterday"'),
    );
    expect(await verify(['--to', 'soon'])).toEqual(usageError('--to must be a time such as 2026-11-28T00:00:00Z, got "soon"'));
  });

  it('takes an Ed25519 public key as a PEM file, PEM text or base64 DER, and refuses anything else', async () => {
    const { publicKey } = generateKeyPairSync('ed25519');
    const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
    const file = join(dir, 'seal.pub');
    await writeFile(file, `\n${pem}\n`);
    const der = (publicKey.export({ type: 'spki', format: 'der' }) as Buffer).toString('base64');
    for (const key of [file, pem, `\n${pem}`, ` ${der}\n`]) expect(await verify([`--public-key=${key}`])).toEqual(NO_URL);
    const bad = usageError('--public-key must be an Ed25519 public key: a PEM file, PEM text or base64 DER (SPKI)');
    expect(await verify(['--public-key=not a key'])).toEqual(bad);
    expect(await verify(['--public-key=-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----'])).toEqual(bad);
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(await verify([`--public-key=${rsa}`])).toEqual(usageError('--public-key must be an Ed25519 public key'));
  });

  it('takes entry keys from --entry-key or AUDIT_INTEGRITY_ENTRY_KEY, naming a bad one without its secret', async () => {
    expect(await verify(['--entry-key', `k1:${SECRET}`])).toEqual(NO_URL);
    expect(await verify([], { AUDIT_INTEGRITY_ENTRY_KEY: `k1:${SECRET},k0:${SECRET}x` })).toEqual(NO_URL);
    expect(await verify([], { AUDIT_INTEGRITY_ENTRY_KEY: '  ' })).toEqual(NO_URL);
    for (const run of [verify(['--entry-key', 'k1:short-secret']), verify([], { AUDIT_INTEGRITY_ENTRY_KEY: 'k1:short-secret' })]) {
      const { status, out, err } = await run;
      expect({ status, out }).toEqual({ status: 2, out: '' });
      expect(err).toMatch(
        /^--entry-key \(or AUDIT_INTEGRITY_ENTRY_KEY\) must be <id>:<secret>\[,<id>:<secret>…\], each secret at least 32 characters: "entry key /,
      );
      expect(err).not.toContain('short-secret');
      expect(err).not.toContain('AuditModule option');
      expect(err.endsWith(VERIFY_USAGE)).toBe(true);
    }
    // Each --entry-key is a key of its own: a bad second one is named, not run into the first.
    const second = await verify(['--entry-key', `k1:${SECRET}`, '--entry-key', 'k2:short-secret']);
    expect({ status: second.status, out: second.out }).toEqual({ status: 2, out: '' });
    expect(second.err).toMatch(/^--entry-key \(or AUDIT_INTEGRITY_ENTRY_KEY\) must be/);
    expect(second.err).not.toContain('short-secret');
    // --entry-key wins over the variable.
    expect(await verify(['--entry-key', `k1:${SECRET}`], { AUDIT_INTEGRITY_ENTRY_KEY: 'k1:short-secret' })).toEqual(NO_URL);
  });

  it('takes the pseudonym key from AUDIT_PRIVACY_PSEUDONYM_KEY, refusing a short one without showing it', async () => {
    expect(await verify([], { AUDIT_PRIVACY_PSEUDONYM_KEY: SECRET })).toEqual(NO_URL);
    expect(await verify([], { AUDIT_PRIVACY_PSEUDONYM_KEY: '' })).toEqual(NO_URL);
    expect(await verify([], { AUDIT_PRIVACY_PSEUDONYM_KEY: 'short-pseudonym-key' })).toEqual(
      usageError('AUDIT_PRIVACY_PSEUDONYM_KEY must be a secret of at least 32 characters (the value is not shown)'),
    );
    // A bad key is refused before the database is looked for, and with --archive too.
    expect(await verify(['--archive', 'x'], { AUDIT_PRIVACY_PSEUDONYM_KEY: 'short' })).toEqual(
      usageError('AUDIT_PRIVACY_PSEUDONYM_KEY must be a secret of at least 32 characters (the value is not shown)'),
    );
    expect(VERIFY_USAGE).toContain('environment: AUDIT_PRIVACY_PSEUDONYM_KEY');
  });

  it('reports a database it cannot reach with exit 2, without the URL or its password', async () => {
    const url = 'postgres://auditor:pa55word-xyz@127.0.0.1:1/audit';
    for (const run of [verify(['--url', url]), verify([], { AUDIT_DATABASE_URL: url }), verify([], { DATABASE_URL: url })]) {
      const { status, out, err } = await run;
      expect({ status, out }).toEqual({ status: 2, out: '' });
      expect(err).toMatch(/^audit-verify failed: \w+: .*ECONNREFUSED/);
      expect(err).not.toContain('pa55word-xyz');
    }
    // A host name is one of the URL's secrets too.
    const named = await verify(['--url', 'postgres://auditor:pa55word-xyz@secret-db-host.invalid:5432/audit']);
    expect(named).toMatchObject({ status: 2, out: '' });
    expect(named.err).toMatch(/^audit-verify failed: /);
    expect(named.err).not.toContain('secret-db-host');
  });

  it('checks an archive with --archive, with no database URL at all', async () => {
    const path = join(dir, 'no-such-archive');
    const { status, out, err } = await verify(['--archive', path]);
    expect({ status, out }).toEqual({ status: 2, out: '' });
    expect(err).toMatch(new RegExp(`^audit-verify failed: cannot check the archive ${path}: `));
  });
});
