import { type INestApplication } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';

// docs/FAILURES.md, "Safe output": "Text is redacted too: in any string, and in an Error's
// message, the value after a redacted key (`password=…`, `token: "…"`), a bearer token and the
// password of a URL become `[REDACTED]`." Each case sends, in a request body's free-text field,
// a secret after a redacted key as such text commonly carries it, and reads the row back.
// The other shapes of each kind are unit cases of src/audit/redaction.spec.ts.
describe('secrets in free text of a request body are not stored', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;
  const secret = () => `s3cr3t${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startExampleApp({ DATABASE_URL: db.url(), AUDIT_DATABASE_URL: undefined, AUDIT_MODE: 'sync', SENTRY_DSN: undefined });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  /** Posts `note` (made from a fresh secret) and returns the stored row's `changes` as JSON text, and the secret. */
  async function stored(note: (value: string) => string): Promise<{ text: string; value: string }> {
    const value = secret();
    const requestId = `free-text-${value}`;
    await request(app.getHttpServer())
      .post('/ndas')
      .set('x-request-id', requestId)
      .send({ title: 'Webhook', counterparty: 'Acme', note: note(value) });
    // A sync write that misses its deadline on a loaded machine is written later from the buffer.
    const rows = await eventually(
      async () => {
        const found = await db.query<{ changes: unknown }>(`SELECT changes FROM audit_log WHERE request_id = $1`, [requestId]);
        return found.length > 0 && found;
      },
      20_000,
      `the row of ${requestId}`,
    );
    expect(rows).toHaveLength(1);
    return { text: JSON.stringify(rows[0].changes), value };
  }

  it.each([
    // A header line: the value after `Authorization` is the scheme and the credentials (base64 of user:password).
    ['an Authorization header with Basic credentials', (s: string) => `Authorization: Basic ${Buffer.from(`ops:${s}`).toString('base64')}`],
    ['an Authorization header with a Token', (s: string) => `curl -H "Authorization: Token ${s}" https://api.example.com`],
    // JSON text of a body that was itself JSON-encoded (an upstream error quoting the request it sent).
    ['JSON encoded twice', (s: string) => `upstream refused: ${JSON.stringify({ body: JSON.stringify({ user: 'ops', password: s }) })}`],
    // A Cookie header line: its value is every cookie, not only the first.
    ['a Cookie header line', (s: string) => `Cookie: lang=en; remember_me=${s}`],
    // A connection URL whose password holds an '@' (drivers take the last '@' as the end of the user info).
    ['a URL whose password holds an @', (s: string) => `connect failed: postgres://ops:p@${s}@db.internal:5432/app`],
    // A quoted value holding an escaped quote.
    ['a quoted value holding an escaped quote', (s: string) => JSON.stringify({ password: `p"${s}` })],
    // Set-Cookie lines as fetch's Headers joins them: the comma of an Expires date ends nothing.
    ['a joined Set-Cookie line', (s: string) => `set-cookie: a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT; HttpOnly, refresh=${s}; Path=/`],
    // PostgreSQL's detail of a NOT NULL violation prints every column of the row.
    ['a failing row', (s: string) => `null value in column "email": Failing row contains (7, ${s}, null).`],
    // A PEM private key pasted into a note or an upstream's error.
    ['a PEM private key', (s: string) => `-----BEGIN RSA PRIVATE KEY-----\nMIIEow${s}\n-----END RSA PRIVATE KEY-----`],
    // A command line echoed by a failed child process, and an encoded redirect target.
    ['a command-line option', (s: string) => `Command failed: pg_dump --password ${s} --host db app`],
    ['a URL-encoded field', (s: string) => `redirect=%2Flogin%3Fuser%3Dann%26password%3D${s}%26lang%3Den`],
    // An environment variable's name ending in PASS.
    ['an environment variable', (s: string) => `env: DB_PASS=${s} DB_USER=app`],
  ])(
    '%s: the secret is not stored',
    async (_label, note) => {
      const { text, value } = await stored(note);
      const readable = text.includes(value) || text.includes(Buffer.from(`ops:${value}`).toString('base64'));
      expect({ stored: text, readable }).toEqual({ stored: text, readable: false });
    },
    30_000,
  );
});
