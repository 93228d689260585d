import { revealPayloads, revealPayloadTexts } from './personal-reveal';

const ERASED_ROW = '{"erased":"01937a4c-0000-7000-8000-0000000000e1"}';
const COMMITTED = '[[["user_id"],"c0"],[["changes","body","email"],"c1"],[["metadata","ip"],"c2"]]';
const KEPT = JSON.stringify({
  salt: 's',
  values: [
    [['changes', 'body', 'email'], '"a@example.com"'],
    [['metadata', 'ip'], '"10.0.0.7"'],
  ],
});

describe('revealPayloads: changes and metadata as they were logged', () => {
  it('returns a row without commitments, or without personal values, as it is', () => {
    const changes = { body: {} };
    const metadata = { source: 'api' };
    for (const [personal, commitments] of [
      [null, null],
      [KEPT, null],
      [null, COMMITTED],
      ['', COMMITTED],
    ]) {
      const revealed = revealPayloads(personal, commitments, changes, metadata);
      expect(revealed.changes).toBe(changes);
      expect(revealed.metadata).toBe(metadata);
    }
  });

  it('returns a row whose personal column is not as the module writes it as it is', () => {
    const changes = { body: {} };
    expect(revealPayloads('{"salt":1}', COMMITTED, changes, null)).toEqual({ changes: { body: {} }, metadata: null });
  });

  it('puts each value back at its path, in copies of the payloads', () => {
    const changes = { body: { n: 1 } };
    const revealed = revealPayloads(KEPT, COMMITTED, changes, null);
    expect(revealed).toEqual({ changes: { body: { n: 1, email: 'a@example.com' } }, metadata: { ip: '10.0.0.7' } });
    expect(changes).toEqual({ body: { n: 1 } });
  });

  it('puts [ERASED] at each committed path of changes and metadata once erased, not the commitment', () => {
    expect(revealPayloads(ERASED_ROW, COMMITTED, { body: {} }, { source: 'api' })).toEqual({
      changes: { body: { email: '[ERASED]' } },
      metadata: { source: 'api', ip: '[ERASED]' },
    });
  });

  it('leaves the payloads of an erased row whose commitments are not as the module writes them as they were', () => {
    expect(revealPayloads(ERASED_ROW, '[[', { body: {} }, null)).toEqual({ changes: { body: {} }, metadata: null });
  });

  it('gives values that the caller can change and remove, as any parsed JSON', () => {
    const revealed = revealPayloads(KEPT, COMMITTED, { body: {} }, null) as { changes: { body: Record<string, unknown> } };
    revealed.changes.body.email = 'b@example.com';
    expect(revealed.changes.body.email).toBe('b@example.com');
    delete revealed.changes.body.email;
    expect(revealed.changes).toEqual({ body: {} });
    expect(Object.keys(revealPayloads(KEPT, COMMITTED, { body: {} }, null).changes as object)).toEqual(['body']);
  });
});

describe('revealPayloadTexts: the JSON texts of an export', () => {
  it('leaves the texts of a row without personal values as they are', () => {
    expect(revealPayloadTexts(null, null, '{"a":1}', null)).toEqual({ changes: '{"a":1}', metadata: null });
    expect(revealPayloadTexts(KEPT, null, '{"a" : 1}', 'null')).toEqual({ changes: '{"a" : 1}', metadata: 'null' });
  });

  it('writes a revealed payload again as PostgreSQL writes jsonb, and keeps NULL and JSON null apart', () => {
    const erased = '[[["changes","body","email"],"c1"]]';
    expect(revealPayloadTexts(ERASED_ROW, erased, '{"body":{"n":1}}', null)).toEqual({
      changes: '{"body": {"n": 1, "email": "[ERASED]"}}',
      metadata: null,
    });
    expect(revealPayloadTexts(ERASED_ROW, erased, '{"body":{}}', 'null')).toEqual({
      changes: '{"body": {"email": "[ERASED]"}}',
      metadata: 'null',
    });
    expect(revealPayloadTexts(KEPT, COMMITTED, null, null)).toEqual({
      changes: '{"body": {"email": "a@example.com"}}',
      metadata: '{"ip": "10.0.0.7"}',
    });
  });
});
