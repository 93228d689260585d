import { type Client } from 'pg';
import { EMPTY_ROOT } from '../../src/audit/integrity/merkle';
import { type Seal, sealHash } from '../../src/audit/integrity/seal';
import { SEAL_COLUMNS_SQL, sealInsert, toSeal } from '../../src/audit/integrity/seal-store';

/**
 * Appends on `client` a link after the newest seal of `audit_seal`, as any role allowed to insert
 * there could: an empty, unsigned link continuing the newest seal, with `changes` applied; its hash
 * matches its fields. Returns its `seq`.
 */
export async function appendLink(client: Client, changes: (newest: Seal) => Partial<Seal>): Promise<number> {
  const [row] = (await client.query(`SELECT ${SEAL_COLUMNS_SQL} FROM audit_seal AS s ORDER BY s.seq DESC LIMIT 1`)).rows;
  const newest = toSeal(row as Record<string, unknown>);
  const link: Seal = {
    ...newest,
    seq: newest.seq + 1,
    prevHash: newest.hash,
    rowCount: 0,
    root: EMPTY_ROOT,
    manifest: Buffer.alloc(0),
    sealedAt: newest.sealedAt + 1000,
    keyId: null,
    signature: null,
    retention: null,
  };
  Object.assign(link, changes(newest));
  link.hash = sealHash(link);
  const insert = sealInsert('audit_seal', link);
  await client.query(insert.sql, insert.parameters);
  return link.seq;
}
