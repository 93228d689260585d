import { generateKeyPairSync } from 'node:crypto';
import { resolveAuditOptions } from '../audit-options';
import { resolveIntegrityOptions } from './integrity-options';

describe('the integrity option', () => {
  const ed25519 = generateKeyPairSync('ed25519').privateKey;

  it('is off by default, and takes an Ed25519 key as PEM or as base64 DER', () => {
    expect(resolveAuditOptions({}).integrity).toMatchObject({ enabled: false, intervalMs: 5000, maxRowsPerSeal: 20_000, signingKey: null });
    const pem = ed25519.export({ type: 'pkcs8', format: 'pem' }).toString();
    const der = ed25519.export({ type: 'pkcs8', format: 'der' }).toString('base64');
    for (const signingKey of [pem, der]) {
      expect(resolveAuditOptions({ integrity: { enabled: true, signingKey } }).integrity.signingKey?.asymmetricKeyType).toBe('ed25519');
    }
  });

  it.each([
    [{ enabled: 'yes' }, 'integrity.enabled'],
    [{ intervalMs: 10 }, 'integrity.intervalMs'],
    [{ maxRowsPerSeal: 1_000_000 }, 'integrity.maxRowsPerSeal'],
    [{ sealEvery: 5 }, 'integrity.sealEvery'],
  ])('stops start-up on %j, naming %s', (integrity, key) => {
    expect(() => resolveAuditOptions({ integrity } as never)).toThrow(`"${key}"`);
  });

  it('refuses a key that is not an Ed25519 private key, naming the option and never showing the value', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const publicOnly = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
    for (const signingKey of [rsa, publicOnly, 'not-a-key-s3cr3t']) {
      let message = '';
      try {
        resolveAuditOptions({ integrity: { enabled: true, signingKey } });
      } catch (error) {
        message = (error as Error).message;
      }
      expect(message).toMatch(/^AuditModule option "integrity.signingKey" must be an Ed25519 private key/);
      expect(message).not.toContain(signingKey.slice(0, 40));
      expect(message).not.toContain('s3cr3t');
    }
  });
});

describe('resolveIntegrityOptions', () => {
  const message = (input: unknown) => {
    try {
      resolveIntegrityOptions(input);
    } catch (error) {
      return (error as Error).message;
    }
    return '';
  };

  it.each([null, 0, 'on', true, []])('refuses %j: the option must be an object', (input) => {
    expect(message(input)).toMatch(/^AuditModule option "integrity" must be an object such as \{ enabled: true \}, got /);
  });

  it('takes each of its keys, each bound inclusive', () => {
    expect(resolveIntegrityOptions({ enabled: true, intervalMs: 100, maxRowsPerSeal: 100, unknownKeyGraceMs: 0, signingKey: '' })).toEqual({
      enabled: true,
      intervalMs: 100,
      maxRowsPerSeal: 100,
      unknownKeyGraceMs: 0,
      signingKey: null,
      entryKeys: [],
      sealerDatabaseUrl: null,
    });
    expect(
      resolveIntegrityOptions({ intervalMs: 3_600_000, maxRowsPerSeal: 100_000, unknownKeyGraceMs: 86_400_000, signingKey: null }),
    ).toMatchObject({
      intervalMs: 3_600_000,
      maxRowsPerSeal: 100_000,
      unknownKeyGraceMs: 86_400_000,
      signingKey: null,
    });
    expect(resolveIntegrityOptions({ signingKey: undefined }).signingKey).toBeNull();
  });

  it.each([
    [{ enabled: 1 }, '"integrity.enabled" must be a boolean, got'],
    [{ intervalMs: 99 }, '"integrity.intervalMs" must be an integer from 100 to 3600000, got'],
    [{ intervalMs: 3_600_001 }, '"integrity.intervalMs" must be an integer from 100 to 3600000, got'],
    [{ intervalMs: 150.5 }, '"integrity.intervalMs" must be an integer from 100 to 3600000, got'],
    [{ intervalMs: '5000' }, '"integrity.intervalMs" must be an integer from 100 to 3600000, got'],
    [{ maxRowsPerSeal: 99 }, '"integrity.maxRowsPerSeal" must be an integer from 100 to 100000, got'],
    [{ maxRowsPerSeal: 100_001 }, '"integrity.maxRowsPerSeal" must be an integer from 100 to 100000, got'],
    [{ unknownKeyGraceMs: -1 }, '"integrity.unknownKeyGraceMs" must be an integer from 0 to 86400000, got'],
    [{ unknownKeyGraceMs: 86_400_001 }, '"integrity.unknownKeyGraceMs" must be an integer from 0 to 86400000, got'],
    [{ signingKey: 42 }, '"integrity.signingKey" must be an Ed25519 private key, PKCS#8 PEM or base64 DER (the value is not shown)'],
    [
      { sealerDatabaseUrl: 'mysql://sealer:pw@db/audit' },
      '"integrity.sealerDatabaseUrl" must be a postgres:// or postgresql:// URL (the value is not shown)',
    ],
    [{ sealerDatabaseUrl: 5432 }, '"integrity.sealerDatabaseUrl" must be a postgres:// or postgresql:// URL (the value is not shown)'],
  ])('refuses %j', (input, expected) => {
    expect(message(input)).toContain(expected);
  });

  it('takes a sealer URL as given, and none as null', () => {
    const url = 'postgresql://sealer:s%40cret@db.internal:5432/audit?sslmode=require';
    expect(resolveIntegrityOptions({ sealerDatabaseUrl: url }).sealerDatabaseUrl).toBe(url);
    expect(resolveIntegrityOptions({ sealerDatabaseUrl: '' }).sealerDatabaseUrl).toBeNull();
    const refused = message({ sealerDatabaseUrl: 'postgres://sealer:hunter2@[db/audit' });
    expect({ named: refused.includes('integrity.sealerDatabaseUrl'), shown: refused.includes('hunter2') }).toEqual({
      named: true,
      shown: false,
    });
  });

  it('takes a PEM key with the whitespace around it that an environment variable or a file adds', () => {
    const pem = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    expect(resolveIntegrityOptions({ signingKey: `\n  ${pem}\n` }).signingKey?.asymmetricKeyType).toBe('ed25519');
  });
});
