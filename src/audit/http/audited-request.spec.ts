import { type ExecutionContext } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { markRecorded } from '../audit-context';
import { AuditedRequest, type RequestOutcome } from './audited-request';
import { UnfinishedRequests } from './unfinished-requests';

/** Node's response as the tracker sees it: a status, and `finish`/`close` events. */
class FakeResponse extends EventEmitter {
  statusCode = 201;
  writableFinished = false;
  writableEnded = false;
  readonly ends: unknown[][] = [];

  end(...args: unknown[]): this {
    this.ends.push(args);
    this.writableEnded = true;
    return this;
  }

  destroy(): this {
    return this;
  }

  finish(statusCode: number): void {
    this.statusCode = statusCode;
    this.writableFinished = true;
    this.emit('finish');
    this.emit('close');
  }
}

describe('AuditedRequest', () => {
  function tracked() {
    const response = new FakeResponse();
    const written: RequestOutcome[] = [];
    const request = new AuditedRequest(
      {} as ExecutionContext,
      response,
      (_, outcome) => {
        written.push(outcome);
        return Promise.resolve();
      },
      new UnfinishedRequests(60_000),
    );
    return { request, response, written };
  }

  it('records a request no handler saw (a guard refused it) when its response has gone out', () => {
    const { response, written } = tracked();
    response.finish(403);
    expect(written).toEqual([{ outcome: 'failure', statusCode: 403 }]);
  });

  it('waits for the handler when the response went out first, as a @Res() handler does', () => {
    const { request, response, written } = tracked();
    request.begin();
    response.finish(202);
    expect(written).toEqual([]);
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' } });
    expect(written).toEqual([{ outcome: 'success', statusCode: 202, result: { id: 'x' } }]);
  });

  it('records a cancelled handler as a cancelled failure, once, whatever comes after', () => {
    const { request, response, written } = tracked();
    request.begin();
    request.observe({ kind: 'cancelled' });
    response.finish(408);
    request.observe({ kind: 'settled', outcome: 'success' });
    expect(written).toEqual([{ outcome: 'failure', statusCode: 408, reason: 'cancelled' }]);
  });

  it('holds the end of the response until the row is written, with the final status (sync mode)', async () => {
    const response = new FakeResponse();
    const written: RequestOutcome[] = [];
    let durable!: () => void;
    const request = new AuditedRequest(
      {} as ExecutionContext,
      response,
      (_, outcome) => {
        written.push(outcome);
        return new Promise<void>((resolve) => (durable = resolve));
      },
      new UnfinishedRequests(60_000),
    );
    request.holdResponse();
    request.begin();
    request.observe({ kind: 'settled', outcome: 'success' });
    response.statusCode = 500;
    response.end('{"statusCode":500}');
    response.end();
    expect(written).toEqual([{ outcome: 'failure', statusCode: 500, result: undefined, error: undefined }]);
    expect(response.ends).toEqual([]);
    durable();
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.ends).toEqual([['{"statusCode":500}'], []]);
    response.finish(500);
    expect(written).toHaveLength(1);
  });

  it('holds the response of a request no handler saw (a guard refused it) too', async () => {
    const response = new FakeResponse();
    let durable!: () => void;
    const request = new AuditedRequest(
      {} as ExecutionContext,
      response,
      () => new Promise<void>((resolve) => (durable = resolve)),
      new UnfinishedRequests(60_000),
    );
    request.holdResponse();
    response.statusCode = 403;
    response.end('forbidden');
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.ends).toEqual([]);
    durable();
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.ends).toEqual([['forbidden']]);
  });

  it('lets a response ended before the handler did go at once, and records it when the handler ends', async () => {
    const { request, response, written } = tracked();
    request.holdResponse();
    request.begin();
    response.end('sent by the handler');
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.ends).toEqual([['sent by the handler']]);
    response.finish(202);
    request.observe({ kind: 'settled', outcome: 'success' });
    expect(written).toEqual([{ outcome: 'success', statusCode: 202, result: undefined, error: undefined }]);
  });

  it('writes no second row for a request whose record() row committed, unless it failed', () => {
    const ok = tracked();
    ok.request.begin();
    ok.request.observe({ kind: 'settled', outcome: 'success' });
    ok.request.scope.recordedAtomically = true;
    ok.response.finish(201);
    expect(ok.written).toEqual([]);
    const refused = tracked();
    refused.request.begin();
    refused.request.scope.recordedAtomically = true;
    refused.request.observe({ kind: 'settled', outcome: 'success' });
    refused.response.finish(409);
    expect(refused.written).toEqual([{ outcome: 'failure', statusCode: 409, result: undefined, error: undefined }]);
  });

  it('asks an unsettled record() row whether it committed before deciding, and only for a success', async () => {
    const settled = async (committed: boolean, statusCode: number) => {
      const { request, response, written } = tracked();
      let asked = 0;
      request.begin();
      request.scope.unsettled = [() => Promise.resolve((asked += 1) > 0 && committed)];
      request.observe({ kind: 'settled', outcome: 'success' });
      response.finish(statusCode);
      await new Promise((resolve) => setImmediate(resolve));
      return { asked, written: written.map((outcome) => outcome.outcome) };
    };
    expect(await settled(true, 201)).toEqual({ asked: 1, written: [] });
    expect(await settled(false, 201)).toEqual({ asked: 1, written: ['success'] });
    expect(await settled(true, 409)).toEqual({ asked: 0, written: ['failure'] });
  });

  it('waits for the pipeline to end the response of a client that went away, and says so', () => {
    const { request, response, written } = tracked();
    request.begin();
    response.emit('close');
    request.observe({ kind: 'settled', outcome: 'success' });
    expect(written).toEqual([]);
    response.statusCode = 201;
    response.end('{"id":"x"}');
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, reason: 'client_closed' }]);
    expect(response.ends).toEqual([['{"id":"x"}']]);
  });

  it('records a request whose client went away while a guard decided only when the guard has answered', () => {
    const { response, written } = tracked();
    response.emit('close');
    expect(written).toEqual([]);
    response.statusCode = 403;
    response.end('forbidden');
    expect(written).toEqual([{ outcome: 'failure', statusCode: 403, reason: 'client_closed' }]);
  });

  it('records a request whose response was ended but not finished when its client went away at once', () => {
    const { request, response, written } = tracked();
    request.begin();
    request.observe({ kind: 'settled', outcome: 'failure' });
    response.statusCode = 500;
    response.end('{"statusCode":500}');
    response.emit('close');
    expect(written).toEqual([{ outcome: 'failure', statusCode: 500, reason: 'client_closed' }]);
  });

  it('holds nothing back in sync mode for a client that went away: the row is made when the response is ended', async () => {
    const response = new FakeResponse();
    const written: RequestOutcome[] = [];
    const request = new AuditedRequest(
      {} as ExecutionContext,
      response,
      (_, outcome) => (written.push(outcome), Promise.resolve()),
      new UnfinishedRequests(60_000),
    );
    request.holdResponse();
    request.begin();
    response.emit('close');
    request.observe({ kind: 'settled', outcome: 'success' });
    expect(written).toEqual([]);
    response.end('{"id":"x"}');
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, reason: 'client_closed' }]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(response.ends).toEqual([['{"id":"x"}']]);
  });

  it('counts the last attempt of a request an outer interceptor retried', () => {
    const { request, response, written } = tracked();
    request.begin();
    request.observe({ kind: 'settled', outcome: 'failure', error: new Error('could not serialize access') });
    request.begin();
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' } });
    response.finish(201);
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, result: { id: 'x' }, error: undefined }]);
  });

  it('lets a record() row of an earlier attempt stand for that attempt only: the last attempt gets its row', () => {
    const { request, response, written } = tracked();
    request.begin();
    request.scope.recordedAtomically = true;
    request.observe({ kind: 'settled', outcome: 'failure', error: new Error('notification service busy') });
    request.begin();
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' } });
    response.finish(201);
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, result: { id: 'x' }, error: undefined }]);
  });

  it('lets a record() row an earlier attempt commits while a later one runs stand for that attempt only', () => {
    const { request, response, written } = tracked();
    const first = request.begin();
    const second = request.begin();
    // The first attempt's handler, given up on by an outer timeout, goes on and commits its row now.
    markRecorded(first);
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' } });
    response.finish(201);
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, result: { id: 'x' }, error: undefined }]);
    expect(second.superseded).toBe(false);
  });

  it('lets a record() row of the last attempt stand for the request', () => {
    const { request, response, written } = tracked();
    request.begin();
    const last = request.begin();
    markRecorded(last);
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' } });
    response.finish(201);
    expect(written).toEqual([]);
  });

  it('keeps the request its row beside a record() row of an attempt whose handler may run again unseen', () => {
    const { request, response, written } = tracked();
    const attempt = request.begin(true);
    markRecorded(attempt);
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' } });
    response.finish(201);
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, result: { id: 'x' }, error: undefined }]);
  });

  describe('a request whose client stays connected and that does not end', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('is recorded as an unfinished failure unfinishedAfterMs after it began; its later end changes nothing', () => {
      const { request, response, written } = tracked();
      request.begin();
      jest.advanceTimersByTime(59_999);
      expect(written).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(written).toEqual([{ outcome: 'failure', statusCode: undefined, reason: 'unfinished' }]);
      request.observe({ kind: 'settled', outcome: 'success' });
      response.finish(201);
      expect(written).toHaveLength(1);
    });
  });

  describe('a request whose client went away and that does not end', () => {
    beforeEach(() => jest.useFakeTimers());
    afterEach(() => jest.useRealTimers());

    it('is recorded as an unfinished failure, without a status, at the deadline; later ends change nothing', () => {
      const { request, response, written } = tracked();
      request.begin();
      response.emit('close');
      jest.advanceTimersByTime(59_999);
      expect(written).toEqual([]);
      jest.advanceTimersByTime(1);
      expect(written).toEqual([{ outcome: 'failure', statusCode: undefined, reason: 'unfinished' }]);
      request.observe({ kind: 'settled', outcome: 'success' });
      response.end();
      expect(written).toHaveLength(1);
    });

    it('is not recorded again when a record() row committed for it', () => {
      const { request, response, written } = tracked();
      request.begin();
      request.scope.recordedAtomically = true;
      response.emit('close');
      jest.advanceTimersByTime(60_000);
      expect(written).toEqual([]);
    });

    it('is let go once it is recorded: its deadline writes nothing, and leaves no timer behind', () => {
      const { request, response, written } = tracked();
      request.begin();
      response.emit('close');
      request.observe({ kind: 'settled', outcome: 'success' });
      response.end();
      expect(written).toHaveLength(1);
      jest.advanceTimersByTime(60_000);
      expect(written).toHaveLength(1);
      expect(jest.getTimerCount()).toBe(0);
    });
  });
});
