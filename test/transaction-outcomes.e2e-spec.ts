import { type INestApplication } from '@nestjs/common';
import { type Server } from 'node:http';
import request from 'supertest';
import { TestPostgres } from './support/postgres';
import { numbersOn, startTxApp, txRows } from './support/tx-app';

const DATABASE = 'outcomes';

// A record() suppresses the request's own row only when its row really committed, and a row lists
// only the changes that committed: PostgreSQL's outcome decides, not the order the calls ran in.
// Sync mode, so that every row of a request is in the table when its response arrives.
describe('transaction outcomes: record(), savepoints, a COMMIT that rolled back', () => {
  let db: TestPostgres;
  let app: INestApplication<Server>;

  const post = (path: string, body: { tag: string } & Record<string, unknown>) =>
    request(app.getHttpServer()).post(`/invoices/${path}`).set('x-request-id', body.tag).send(body).expect(201);
  const invoices = async (...numbers: string[]) =>
    (await db.query<{ number: string }>('SELECT number FROM invoice WHERE number = ANY($1) ORDER BY number', [numbers], DATABASE)).map(
      (row) => row.number,
    );

  beforeAll(async () => {
    db = await TestPostgres.start();
    app = await startTxApp(db, { database: DATABASE, audit: { mode: 'sync' } });
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await db?.stop();
  });

  describe('case 1: a record() whose transaction rolled back', () => {
    it('suppresses nothing: the request gets its one row, with its status and only the change that committed', async () => {
      await post('record-rolled-back', { tag: 'c1-rolled-back', rolledBack: 'R-1', kept: 'K-1' });
      expect(await invoices('R-1', 'K-1')).toEqual(['K-1']);
      const rows = await txRows(db, DATABASE, 'c1-rolled-back');
      expect(rows).toEqual([expect.objectContaining({ action: 'invoices.record_rolled_back', outcome: 'success', status: 201 })]);
      expect(numbersOn(rows[0])).toEqual(['K-1']);
    });

    it('in a savepoint rolled back: the outer change stays for the request’s row, the savepoint’s goes on no row', async () => {
      await post('record-in-savepoint', { tag: 'c1-savepoint', kept: 'K-2', dropped: 'D-2' });
      expect(await invoices('K-2', 'D-2')).toEqual(['K-2']);
      const rows = await txRows(db, DATABASE, 'c1-savepoint');
      expect(rows).toEqual([expect.objectContaining({ action: 'invoices.record_in_savepoint', outcome: 'success', status: 201 })]);
      expect(numbersOn(rows[0])).toEqual(['K-2']);
    });

    it('in a savepoint released, then the whole transaction rolled back: the request gets its row, with no change', async () => {
      await post('record-outer-rolled-back', { tag: 'c1-outer', inner: 'I-4' });
      expect(await invoices('I-4')).toEqual([]);
      expect(await txRows(db, DATABASE, 'c1-outer')).toEqual([
        {
          action: 'invoices.record_outer_rolled_back',
          outcome: 'success',
          status: 201,
          changes: { body: { tag: 'c1-outer', inner: 'I-4' } },
        },
      ]);
    });

    it('in a savepoint released and committed: its row is the request’s, with the changes of both levels', async () => {
      await post('record-in-released-savepoint', { tag: 'c1-released', outer: 'O-3', inner: 'I-3' });
      expect(await invoices('O-3', 'I-3')).toEqual(['I-3', 'O-3']);
      const rows = await txRows(db, DATABASE, 'c1-released');
      expect(rows).toEqual([expect.objectContaining({ action: 'invoice_recorded_in_savepoint', outcome: 'success' })]);
      expect(numbersOn(rows[0])).toEqual(['O-3', 'I-3']);
    });
  });

  describe('case 12: a COMMIT that PostgreSQL turned into ROLLBACK (a failed statement was caught)', () => {
    it('lists no change as committed', async () => {
      await post('caught-statement', { tag: 'c12-changes', number: 'C-5' });
      expect(await invoices('C-5')).toEqual([]);
      expect(await txRows(db, DATABASE, 'c12-changes')).toEqual([
        { action: 'invoices.caught_statement', outcome: 'success', status: 201, changes: { body: { tag: 'c12-changes', number: 'C-5' } } },
      ]);
    });

    it('lets a record() in it suppress nothing: the request gets its own row', async () => {
      await post('caught-statement', { tag: 'c12-record', number: 'C-6', record: true });
      expect(await invoices('C-6')).toEqual([]);
      expect(await txRows(db, DATABASE, 'c12-record')).toEqual([
        {
          action: 'invoices.caught_statement',
          outcome: 'success',
          status: 201,
          changes: { body: { tag: 'c12-record', number: 'C-6', record: true } },
        },
      ]);
    });
  });
});
