import { QueryFailedError } from 'typeorm';
import { connectionSecrets, sanitizeDbError } from './db-error';

describe('sanitizeDbError', () => {
  const secrets = connectionSecrets({ url: 'postgres://app_user:Sup3r%20Secret@db.internal.example:5432/audit' });

  it('keeps the code and removes URLs, credentials and hosts', () => {
    const error = Object.assign(
      new Error('connect ECONNREFUSED 10.0.0.5:5432 while using postgres://app_user:Sup3r%20Secret@db.internal.example:5432/audit'),
      { code: 'ECONNREFUSED' },
    );
    const { code, message } = sanitizeDbError(error, secrets);
    expect(code).toBe('ECONNREFUSED');
    expect(message).toBe('connect ECONNREFUSED [host] while using [url]');
  });

  it('reports a QueryFailedError by its driver code and message, never its query or parameters', () => {
    const driverError = Object.assign(new Error('permission denied for table audit_log'), { code: '42501' });
    const error = new QueryFailedError('INSERT INTO audit_log VALUES ($1)', ['{"password":"x"}'], driverError);
    expect(sanitizeDbError(error, secrets)).toEqual({
      code: '42501',
      message: 'permission denied for table audit_log (GRANT INSERT, SELECT ON audit_log to the application role)',
    });
  });

  it('removes the literal user, password and host of the DataSource wherever they appear', () => {
    const error = new Error('password authentication failed for user "app_user" at db.internal.example (Sup3r Secret)');
    expect(sanitizeDbError(error, secrets).message).toBe('password authentication failed for user "[redacted]" at [redacted] ([redacted])');
  });

  it('adds what to do for the failures an operator fixes from the message alone', () => {
    const missing = Object.assign(new Error('relation "audit_log" does not exist'), { code: '42P01' });
    expect(sanitizeDbError(missing, []).message).toBe('relation "audit_log" does not exist (run the CreateAuditLog migration)');
  });

  it('strips key=value credentials, newlines, and caps the length', () => {
    const { code, message } = sanitizeDbError({ message: `host=db password='a b'\nuser=x ${'y'.repeat(500)}`, code: 'has spaces' }, []);
    expect(code).toBe('ERROR');
    expect(message.startsWith('host=[redacted] password=[redacted] user=[redacted] y')).toBe(true);
    expect(message.length).toBeLessThanOrEqual(301);
  });
});
