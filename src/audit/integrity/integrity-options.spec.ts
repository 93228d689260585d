import { generateKeyPairSync } from 'node:crypto';
import { resolveAuditOptions } from '../audit-options';

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
