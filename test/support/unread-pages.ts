import { connect, type Socket } from 'node:net';
import { type TestPostgres } from './postgres';

/** Rows of 40 KB each under entity id `big`: one page of 500 of them is a 19 MB answer. */
export const BIG_NOTE = 'x'.repeat(40_000);

/** Inserts `rows` rows of {@link BIG_NOTE} (entity `NDA` / `big`), one a second from 2026-10-01. */
export function seedBigRows(db: TestPostgres, rows: number): Promise<unknown> {
  return db.query(
    `INSERT INTO audit_log (id, occurred_at, action, entity_type, entity_id, user_id, outcome, changes)
     SELECT gen_random_uuid(), timestamptz '2026-10-01' + g * interval '1 second', 'nda_updated', 'NDA', 'big', 'user-1', 'success',
       jsonb_build_object('n', g, 'note', $1::text)
     FROM generate_series(1, ${rows}) AS g`,
    [BIG_NOTE],
  );
}

/**
 * Sends `GET path` as an auditor, waits for the first bytes of the answer (its status), and then
 * never reads again; the socket goes into `sockets`, for the suite to destroy.
 */
export function askAndStall(sockets: Socket[], port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    socket.on('error', () => undefined);
    socket.once('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nx-auditor: yes\r\n\r\n`));
    socket.once('readable', () => {
      const head = (socket.read(12) as Buffer | null)?.toString('latin1') ?? '';
      socket.pause();
      resolve(Number(head.slice(9, 12)));
    });
    socket.once('close', () => reject(new Error('closed before any answer')));
  });
}
