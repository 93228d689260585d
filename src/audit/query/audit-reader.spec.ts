import { type AuditReadPool } from './audit-read-pool';
import { pageStatement } from './audit-query.sql';
import { AuditReader, type ReadClient, type ReadResult } from './audit-reader';

/** A connection that answers each query string with the next of `answers` (rows, or an error to throw), and records them. */
function fakeClient(answers: ({ code: string } | unknown[])[], prepared?: Set<string>) {
  const texts: string[] = [];
  const released: (boolean | Error | undefined)[] = [];
  const client: ReadClient = {
    query<R>(text: string): Promise<ReadResult<R>> {
      texts.push(text);
      const answer = answers.shift();
      if (answer && !Array.isArray(answer)) return Promise.reject(Object.assign(new Error('prepared statement'), answer));
      return Promise.resolve([{ rows: [] }, { rows: (answer ?? []) as R[] }]);
    },
    release: (destroy) => released.push(destroy),
    prepared,
  };
  return { client, texts, released };
}

function readerOn(client: ReadClient): AuditReader {
  const repository = { metadata: { tablePath: 'audit_log' }, manager: undefined };
  const pool = { connect: () => Promise.resolve(client) } as unknown as AuditReadPool;
  return new AuditReader(repository as never, 1000, pool);
}

describe('AuditReader prepared reads', () => {
  const read = pageStatement('"audit_log"', { entityType: 'NDA', entityId: 'e-1' }, undefined, 50);

  it('prepares a read the first time on a connection, then only executes it', async () => {
    const { client, texts } = fakeClient([[{ id: 'a' }], [{ id: 'b' }]], new Set());
    const reader = readerOn(client);
    expect(await reader.read('SELECT literal', read)).toEqual([{ id: 'a' }]);
    expect(await reader.read('SELECT literal', read)).toEqual([{ id: 'b' }]);
    expect(texts[0]).toContain(`PREPARE ${read.name} AS SELECT`);
    expect(texts[0]).toContain(`EXECUTE ${read.name}('NDA', 'e-1', 51)`);
    expect(texts[1]).not.toContain('PREPARE');
    expect(texts[1]).toContain(`EXECUTE ${read.name}(`);
  });

  it.each(['26000', '42P05'])(
    'reads the literal SQL on the same connection when the server answers %s (a pooler in transaction mode)',
    async (code) => {
      const { client, texts, released } = fakeClient([{ code }, [{ id: 'a' }]], new Set([read.name]));
      expect(await readerOn(client).read('SELECT literal', read)).toEqual([{ id: 'a' }]);
      expect(texts[1]).toMatch(/; SELECT literal$/);
      expect(released).toEqual([undefined]);
    },
  );

  it('reads the literal SQL on a connection that keeps no record of its statements', async () => {
    const { client, texts } = fakeClient([[{ id: 'a' }]]);
    expect(await readerOn(client).read('SELECT literal', read)).toEqual([{ id: 'a' }]);
    expect(texts).toEqual(['SET LOCAL statement_timeout = 1000; SELECT literal']);
  });
});
