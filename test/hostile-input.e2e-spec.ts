import { type INestApplication } from '@nestjs/common';
import * as Sentry from '@sentry/nestjs';
import fc from 'fast-check';
import { randomBytes } from 'node:crypto';
import { type Server } from 'node:http';
import request from 'supertest';
import { AUDIT_DEFAULTS } from '../src/audit';
import { compileRedactor, redactText } from '../src/audit/redaction';
import { type AuditEventLine } from '../src/audit/sinks';
import { eventually, startExampleApp } from './support/app';
import { TestPostgres } from './support/postgres';
import { SentryIngest } from './support/sentry-ingest';
import { StderrCapture } from './support/stderr';

// Hostile HTTP requests against the example app (real HTTP, real PostgreSQL, the real Sentry SDK),
// first with the audit database up, then while it is down. Each request carries a unique
// x-request-id, so its audit entry can be found, and secrets under redacted keys, replaced by a
// unique token just before sending, so any sink that leaks one is caught.
const MAX_DEPTH = 32;
const MAX_ENTRY_BYTES = 64 * 1024;
const BODY_LIMIT_BYTES = 100 * 1024;
const SECRET = '@@SECRET@@';
const RUN = randomBytes(4).toString('hex');

type Method = 'POST' | 'PATCH' | 'DELETE';
interface HostileRequest {
  method: Method;
  /** Route parameter of PATCH and DELETE, before percent-encoding. */
  param: string;
  /** Exact JSON text of the body (POST, PATCH); may hold {@link SECRET} placeholders. */
  body: string | undefined;
  userId: string;
  userAgent: string;
}
interface Sent {
  marker: string;
  secret: string;
  request: HostileRequest;
  status: number;
  createdId: string | undefined;
}
/** The fields of one audit entry, from a table row or from an `audit.buffered` line. */
interface Audited {
  action: string;
  entityType: string | null;
  entityId: string | null;
  userId: string | null;
  userAgent: string | null;
  requestId: string | null;
  outcome: string;
  changes: unknown;
  metadata: { statusCode?: number; method?: string; params?: unknown };
}
interface Row {
  action: string;
  entity_type: string | null;
  entity_id: string | null;
  user_id: string | null;
  user_agent: string | null;
  request_id: string | null;
  outcome: string;
  changes: unknown;
  metadata: Audited['metadata'];
}

// What the README promises a stored value looks like: NUL and lone surrogates replaced, values
// under redacted keys (the default list, matched as the README says) replaced, secrets in text
// redacted, nesting cut at 32 levels, non-finite numbers as strings.
const isRedacted = compileRedactor(AUDIT_DEFAULTS.redactKeys);
const storable = (text: string) => text.toWellFormed().replaceAll('\u0000', '\uFFFD');
const storableValue = (text: string) => storable(redactText(text, isRedacted));

function expectedJson(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return storableValue(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : String(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return '[MaxDepth]';
  if (Array.isArray(value)) {
    // A [name, value] pair is redacted by its name, as header pairs are.
    const pair = value.length === 2 && typeof value[0] === 'string' && isRedacted(storableValue(value[0]));
    return pair ? [expectedJson(value[0], depth + 1), '[REDACTED]'] : value.map((item) => expectedJson(item, depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    // defineProperty: a "__proto__" key in the request body is data, not a prototype.
    Object.defineProperty(out, storable(key), {
      value: isRedacted(key) ? '[REDACTED]' : expectedJson(child, depth + 1),
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return out;
}

const hostileText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.string({ unit: 'binary-ascii', maxLength: 30 }),
  fc.constantFrom(
    '\u0000',
    'a\u0000b',
    '\ud800',
    'x\udfffy',
    '\u200f\u202eevil\u202c',
    '\n{"event":"audit.recovered","level":"info"}\n',
    '"}\r\n{"event":"audit.dropped"',
    "'); DROP TABLE audit_log; --",
    "' OR '1'='1",
    '$$; TRUNCATE audit_log; $$',
    '{"$ref":"#"}',
    '\\u0000',
    '%00',
    '\u2028\u2029',
    '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩‍👩‍👧',
  ),
);
const plainKey = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom('title', 'counterparty') },
  fc.constantFrom('constructor', '$ref', 'id', 'a\u0000b', '\ud800', '\u202eeltit', '"}\n{"event":"x"}', "'; DROP TABLE audit_log; --", ''),
  // fast-check likes to produce "__proto__"; that key has a test of its own.
  fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 8 }).filter((key) => !isRedacted(key) && key !== '__proto__'),
);
const secretKey = fc.constantFrom(
  'password',
  'apiToken',
  'authorization',
  'Api-Key',
  'x_SECRET_x',
  'accessToken',
  'Cookie',
  'private_key',
  'DB_PASSWD',
);
const secretValue = fc.constantFrom<unknown>(SECRET, `Bearer ${SECRET}`, { nested: SECRET }, [SECRET, 1], { password: SECRET });
const scalar = fc.oneof(
  hostileText,
  fc.double(),
  fc.integer(),
  fc.boolean(),
  fc.constant(null),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, -0, 1e21),
);
const { value: jsonValue } = fc.letrec<{ value: unknown; object: Record<string, unknown> }>((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('object'), fc.array(tie('value'), { maxLength: 4 })),
  object: fc
    .tuple(fc.array(fc.tuple(plainKey, tie('value')), { maxLength: 4 }), fc.option(fc.tuple(secretKey, secretValue), { nil: undefined }))
    .map(([entries, secret]) => {
      const object: Record<string, unknown> = {};
      for (const [key, value] of secret ? [...entries, secret] : entries) {
        Object.defineProperty(object, key, { value, enumerable: true, writable: true, configurable: true });
      }
      return object;
    }),
}));
/** A body object that always holds at least one secret at its top level. */
const objectWithSecret = fc
  .tuple(jsonValue, secretKey, secretValue)
  .map(([value, key, secret]) =>
    value !== null && typeof value === 'object' && !Array.isArray(value) ? { ...value, [key]: secret } : { title: value, [key]: secret },
  );

const bodyText = fc.oneof(
  // A valid NDA or update: the handler succeeds (unless PostgreSQL refuses the title).
  fc.record({ title: hostileText, counterparty: hostileText }).map((body) => JSON.stringify(body)),
  objectWithSecret.map((body) => JSON.stringify(body)),
  // Non-string ids and titles: numbers, arrays, objects.
  fc
    .tuple(fc.oneof(fc.integer(), fc.array(hostileText, { maxLength: 3 }), jsonValue), secretKey)
    .map(([title, key]) => JSON.stringify({ title, counterparty: 'Acme', [key]: SECRET })),
  // Circular-looking structures and repeated keys: the last value of a repeated key wins.
  fc.constantFrom(
    `{"a":{"$ref":"#"},"password":"${SECRET}"}`,
    `{"title":{"$ref":"#/title"},"self":{"$ref":"#"},"apiToken":"${SECRET}"}`,
    `{"title":"first","password":"${SECRET}","title":"second","password":"${SECRET}-again"}`,
    `{"title":"x","counterparty":"y","title":"z"}`,
    `{"constructor":{"prototype":{"polluted":1}},"authorization":"Basic ${SECRET}"}`,
    `[{"password":"${SECRET}"},{"title":"t"}]`,
    `{"title":1e400,"counterparty":-0,"token":"${SECRET}"}`,
  ),
  // Deeply nested, with secrets at the top and below the depth cut.
  fc
    .tuple(
      // The array form's innermost string is under no redacted key: it must lie below the cut.
      fc.integer({ min: MAX_DEPTH, max: 15_000 }),
      fc.boolean(),
    )
    .map(([depth, arrays]) =>
      arrays
        ? `{"password":"${SECRET}","title":${'['.repeat(depth)}"${SECRET}"${']'.repeat(depth)}}`
        : `${'{"a":'.repeat(depth)}{"secret":"${SECRET}","b":1}${'}'.repeat(depth)}`,
    ),
  // Huge, up to the body parser's limit.
  fc.tuple(fc.integer({ min: 1000, max: BODY_LIMIT_BYTES - 200 }), fc.constantFrom('x', 'é', '\u0000')).map(([bytes, unit]) => {
    const repeat = Math.floor(bytes / Buffer.byteLength(JSON.stringify(unit).slice(1, -1)));
    return JSON.stringify({ title: unit.repeat(repeat), password: SECRET });
  }),
);

// Header values: printable ASCII and tab. Node refuses CR/LF on both sides, trims leading and trailing
// blanks, and sends other bytes as UTF-8 or latin1 depending on whether a body follows.
const headerText = fc
  .oneof(
    fc.string({
      unit: fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
      minLength: 1,
      maxLength: 300,
    }),
    fc.constantFrom(
      '"},{"event":"audit.recovered","level":"info"',
      '\\n{"event":"audit.dropped"}',
      "admin'; DROP TABLE audit_log; --",
      'alice\tbob',
    ),
  )
  .map((text) => text.replace(/^[ \t]+|[ \t]+$/g, ''))
  .filter((text) => text.length > 0);

const paramText = fc.oneof(
  // Well-formed only: a lone surrogate cannot be percent-encoded (see the broken percent-escape case).
  hostileText.filter((text) => text.isWellFormed() && text !== '' && text !== '.' && text !== '..'),
  fc.constantFrom(
    '\n{"event":"audit.recovered","level":"info"}',
    '../../health',
    '00000000-0000-0000-0000-000000000000',
    "1' OR '1'='1",
    '\u0000',
    '%',
  ),
);

const hostileRequest: fc.Arbitrary<HostileRequest> = fc.record({
  method: fc.constantFrom<Method>('POST', 'PATCH', 'DELETE'),
  param: paramText,
  body: bodyText,
  userId: headerText,
  userAgent: headerText,
});

describe('hostile requests against the example app', () => {
  let appDb: TestPostgres;
  let auditDb: TestPostgres;
  let ingest: SentryIngest;
  let stderr: StderrCapture;
  let app: INestApplication<Server>;
  let counter = 0;
  const sentWhileUp: Sent[] = [];
  const sentWhileDown: Sent[] = [];

  const server = () => app.getHttpServer();
  const rowsOf = (markers: string[]) => auditDb.query<Row>('SELECT * FROM audit_log WHERE request_id = ANY($1)', [markers]);
  const fromRow = (row: Row): Audited => ({
    action: row.action,
    entityType: row.entity_type,
    entityId: row.entity_id,
    userId: row.user_id,
    userAgent: row.user_agent,
    requestId: row.request_id,
    outcome: row.outcome,
    changes: row.changes,
    metadata: row.metadata,
  });
  const rawStderrCalls = () => jest.mocked(process.stderr.write).mock.calls;

  async function send(hostile: HostileRequest): Promise<Sent> {
    counter += 1;
    const marker = `hostile-${RUN}-${counter}`;
    const secret = `s3cr3t-${RUN}-${counter}-${randomBytes(6).toString('hex')}`;
    const path = hostile.method === 'POST' ? '/ndas' : `/ndas/${encodeURIComponent(hostile.param)}`;
    const agent = request(server());
    const verb = hostile.method === 'POST' ? 'post' : hostile.method === 'PATCH' ? 'patch' : 'delete';
    let call = agent[verb](path)
      .set('x-request-id', marker)
      .set('x-user-id', hostile.userId)
      .set('user-agent', hostile.userAgent)
      .set('authorization', `Bearer ${secret}`)
      .set('cookie', `session=${secret}`);
    if (hostile.method !== 'DELETE' && hostile.body !== undefined) {
      call = call.set('content-type', 'application/json').send(hostile.body.replaceAll(SECRET, secret));
    }
    const response = await call;
    const createdId = hostile.method === 'POST' && response.status === 201 ? (response.body as { id: string }).id : undefined;
    return { marker, secret, request: hostile, status: response.status, createdId };
  }

  /** Everything a user can check about the one entry of `sent`. */
  function expectEntry(sent: Sent, entry: Audited): void {
    const { request: hostile, status } = sent;
    const body = hostile.method === 'DELETE' ? undefined : JSON.parse(hostile.body!.replaceAll(SECRET, sent.secret));
    const paramEntityId = storable(hostile.param).slice(0, 256).toWellFormed();
    expect(entry).toMatchObject({
      action: { POST: 'nda_created', PATCH: 'nda_updated', DELETE: 'nda_deleted' }[hostile.method],
      entityType: 'NDA',
      entityId: hostile.method === 'POST' ? (sent.createdId ?? null) : paramEntityId,
      userId: hostile.userId.slice(0, 256),
      userAgent: hostile.userAgent.slice(0, 512),
      requestId: sent.marker,
      outcome: status < 400 ? 'success' : 'failure',
      metadata: { method: hostile.method, statusCode: status },
    });
    if (hostile.method !== 'POST') expect(entry.metadata.params).toEqual({ id: storableValue(hostile.param) });
    if (body === undefined) {
      expect(entry.changes).toBeNull();
    } else {
      // A created NDA is on the row as its diff too (NDA is an audited entity).
      const id = sent.createdId;
      const fields = (b: { title: string; counterparty: string }) => ({
        id: [null, id],
        title: [null, b.title],
        counterparty: [null, b.counterparty],
      });
      const sentChanges = id ? { body, entities: [{ type: 'NDA', id, op: 'insert', fields: fields(body) }] } : { body };
      // The round trip through JSON is what jsonb does (-0 becomes 0).
      const expected = JSON.parse(JSON.stringify(expectedJson(sentChanges))) as { entities?: unknown };
      const expectedBytes = Buffer.byteLength(JSON.stringify(expected));
      const changes = entry.changes as { _truncated?: boolean; preview?: string; originalBytes?: number };
      if (changes?._truncated === true) {
        // The diff keeps its share whole; the body is cut, in a preview a quarter of what the diff leaves.
        const { entities, ...rest } = expected;
        const diffs = entities === undefined ? {} : { entities };
        const previewChars = Math.floor((MAX_ENTRY_BYTES - (entities === undefined ? 0 : Buffer.byteLength(JSON.stringify(diffs)))) / 16);
        expect(expectedBytes).toBeGreaterThan(MAX_ENTRY_BYTES - 8 * 1024);
        expect(changes).toEqual({
          _truncated: true,
          originalBytes: expect.any(Number),
          preview: storable(JSON.stringify(rest).slice(0, previewChars)),
          ...diffs,
        });
        // Measured exactly when read whole; a value the conversion stopped reading is at least the cap.
        expect(changes.originalBytes).toBeGreaterThanOrEqual(Math.min(Buffer.byteLength(JSON.stringify(rest)), MAX_ENTRY_BYTES));
      } else {
        expect(expectedBytes).toBeLessThanOrEqual(MAX_ENTRY_BYTES);
        expect(entry.changes).toEqual(expected);
      }
    }
    expect(JSON.stringify(entry)).not.toContain(sent.secret);
  }

  /** Each write to stderr is one newline-terminated line holding one JSON object with a string `event`. */
  function expectWellFormedStderr(fromCall: number): void {
    expect(stderr.other).toEqual([]);
    const calls = rawStderrCalls().slice(fromCall);
    for (const [chunk] of calls) {
      expect(typeof chunk).toBe('string');
      expect(chunk as string).toMatch(/\n$/);
      const text = (chunk as string).slice(0, -1);
      expect(text).not.toMatch(/[\r\n]/);
      // Docker and awslogs split a longer line; a larger entry comes in numbered parts.
      expect(Buffer.byteLength(chunk as string)).toBeLessThanOrEqual(16 * 1024);
      const line = JSON.parse(text) as AuditEventLine;
      expect(line).toEqual(expect.objectContaining({ event: expect.stringMatching(/^audit\.[a-z_]+$/) }));
    }
  }

  /** Where a secret sits in what was written to stderr or sent to Sentry, as paths like `event.request.headers.cookie`. */
  function secretSightings(sent: Sent[], stderrFrom: number): string[] {
    const secrets = sent.map((s) => s.secret);
    const found: string[] = [];
    const walk = (value: unknown, path: string): void => {
      if (typeof value === 'string') {
        if (secrets.some((secret) => value.includes(secret))) found.push(path);
      } else if (value !== null && typeof value === 'object') {
        for (const [key, child] of Object.entries(value)) walk(child, `${path}.${key}`);
      }
    };
    rawStderrCalls()
      .slice(stderrFrom)
      .forEach(([chunk], i) => walk(String(chunk), `stderr[${i}]`));
    ingest.events.forEach((event, i) => walk(event, `sentry[${i}:${event.fingerprint?.[0] ?? event.level}]`));
    // Whatever the envelopes held besides events (sessions, attachments…), as raw text.
    const raw = ingest.rawBodies.join('\n');
    if (found.length === 0 && secrets.some((secret) => raw.includes(secret))) found.push('sentry envelope (outside events)');
    return [...new Set(found.map((path) => path.replace(/\[\d+\]/g, '[]').replace(/\[\d+:/g, '[')))];
  }

  async function expectStillServing(): Promise<void> {
    const marker = `normal-${RUN}-${++counter}`;
    const created = await request(server())
      .post('/ndas')
      .set('x-request-id', marker)
      .set('x-user-id', 'alice')
      .send({ title: 'Plain NDA', counterparty: 'Acme' });
    expect(created.status).toBe(201);
    const [row] = await eventually(
      async () => {
        const rows = await rowsOf([marker]);
        return rows.length === 1 && rows;
      },
      10_000,
      'the normal request audited',
    );
    expect(row).toMatchObject({ outcome: 'success', entity_id: (created.body as { id: string }).id, user_id: 'alice' });
  }

  beforeAll(async () => {
    [appDb, auditDb, ingest] = await Promise.all([TestPostgres.start(), TestPostgres.start(), SentryIngest.start()]);
    Sentry.init({ dsn: ingest.dsn, environment: 'test' });
    stderr = new StderrCapture();
    app = await startExampleApp({
      DATABASE_URL: appDb.url(),
      AUDIT_DATABASE_URL: auditDb.url(),
      AUDIT_WRITE_TIMEOUT_MS: '1500',
      AUDIT_RETRY_BACKOFF_MS: '100',
      AUDIT_RETRY_BACKOFF_MAX_MS: '200',
      AUDIT_BUFFER_SIZE: undefined,
      AUDIT_HTTP: undefined,
      SENTRY_DSN: undefined,
    });
    // The module connects its DataSource in the background: one entry through before the properties start.
    await expectStillServing();
  }, 90_000);

  afterAll(async () => {
    await app?.close();
    stderr?.restore();
    await Sentry.close(2000);
    await Promise.all([appDb?.stop(), auditDb?.stop(), ingest?.stop()]);
  }, 30_000);

  it('database up: every hostile mutation gets exactly one faithful, redacted row, and the app keeps serving', async () => {
    const stderrFrom = rawStderrCalls().length;
    await fc.assert(
      fc.asyncProperty(hostileRequest, async (hostile) => {
        const sent = await send(hostile);
        sentWhileUp.push(sent);
        const [row] = await eventually(
          async () => {
            const rows = await rowsOf([sent.marker]);
            return rows.length > 0 && rows;
          },
          5000,
          `the audit row of ${sent.marker}`,
        );
        expectEntry(sent, fromRow(row));
      }),
      { numRuns: 60 },
    );
    const rows = await rowsOf(sentWhileUp.map((s) => s.marker));
    expect(rows.map((row) => row.request_id).sort()).toEqual(sentWhileUp.map((s) => s.marker).sort());
    expect(rawStderrCalls().slice(stderrFrom)).toEqual([]);
    expect((await request(server()).get('/health')).status).toBe(200);
    await expectStillServing();
  }, 60_000);

  it('a "__proto__" key in the body is recorded as data, not dropped', async () => {
    const sent = await send({
      method: 'POST',
      param: 'unused',
      body: `{"title":"t","__proto__":{"isAdmin":true,"password":"${SECRET}"},"nested":[{"__proto__":"x"}]}`,
      userId: 'mallory',
      userAgent: 'e2e',
    });
    expect(sent.status).toBe(400);
    const [row] = await eventually(async () => {
      const rows = await rowsOf([sent.marker]);
      return rows.length > 0 && rows;
    });
    expect(JSON.stringify(row.changes)).not.toContain(sent.secret);
    expectEntry(sent, fromRow(row));
  });

  it('database down: each hostile mutation has one well-formed buffered line, and recovery writes each once', async () => {
    const stderrFrom = rawStderrCalls().length;
    const sentryFrom = ingest.rawBodies.length;
    await auditDb.kill();
    try {
      await fc.assert(
        fc.asyncProperty(hostileRequest, async (hostile) => {
          const sent = await send(hostile);
          sentWhileDown.push(sent);
          const line = await eventually(
            () => stderr.of('audit.buffered').find((l) => (l.entry as { requestId?: string }).requestId === sent.marker),
            5000,
            `the audit.buffered line of ${sent.marker}`,
          );
          expect(stderr.of('audit.buffered').filter((l) => (l.entry as { requestId?: string }).requestId === sent.marker)).toHaveLength(1);
          expect(line).toMatchObject({ level: 'warn', auditId: (line.entry as { id: string }).id });
          expectEntry(sent, line.entry as Audited);
        }),
        { numRuns: 40 },
      );
      expect((await request(server()).get('/health')).status).toBe(503);
      expectWellFormedStderr(stderrFrom);
    } finally {
      await auditDb.restart();
    }
    await eventually(() => stderr.of('audit.recovered').length > 0, 15_000, 'the audit.recovered line');
    const rows = await eventually(
      async () => {
        const found = await rowsOf(sentWhileDown.map((s) => s.marker));
        return found.length >= sentWhileDown.length && found;
      },
      10_000,
      'every buffered entry flushed',
    );
    expect(rows.map((row) => row.request_id).sort()).toEqual(sentWhileDown.map((s) => s.marker).sort());
    for (const row of rows)
      expectEntry(
        sentWhileDown.find((s) => s.marker === row.request_id)!,
        fromRow(row),
      );
    expect((await rowsOf(sentWhileUp.map((s) => s.marker))).length).toBe(sentWhileUp.length);

    await Sentry.flush(2000);
    expect(ingest.events.some((event) => event.level === 'warning' && event.fingerprint?.[0] === 'audit-db-write-failed')).toBe(true);
    expect(ingest.rawBodies.slice(sentryFrom).join('\n')).not.toContain('"changes"');
    expectWellFormedStderr(stderrFrom);
    expect((await request(server()).get('/health')).status).toBe(200);
    await expectStillServing();
  }, 90_000);

  it('no secret sent with a request (body fields under redacted keys, authorization, cookie) reaches stderr or Sentry', async () => {
    expect(sentWhileDown.length).toBeGreaterThan(0);
    await Sentry.flush(2000);
    expect(secretSightings([...sentWhileUp, ...sentWhileDown], 0)).toEqual([]);
  });
});
