import { type ExecutionContext } from '@nestjs/common';
import { EventEmitter } from 'node:events';
import { AuditedRequest, type RequestOutcome } from './audited-request';

/** Node's response as the tracker sees it: a status, and `finish`/`close` events. */
class FakeResponse extends EventEmitter {
  statusCode = 201;
  writableFinished = false;

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
    const request = new AuditedRequest({} as ExecutionContext, response, (_, outcome) => written.push(outcome));
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
    request.observe({ kind: 'settled', outcome: 'success', result: { id: 'x' }, recordedAtomically: false });
    expect(written).toEqual([{ outcome: 'success', statusCode: 202, result: { id: 'x' } }]);
  });

  it('records a cancelled handler as a cancelled failure, once, whatever comes after', () => {
    const { request, response, written } = tracked();
    request.begin();
    request.observe({ kind: 'cancelled' });
    response.finish(408);
    request.observe({ kind: 'settled', outcome: 'success', recordedAtomically: false });
    expect(written).toEqual([{ outcome: 'failure', statusCode: 408, reason: 'cancelled' }]);
  });

  it('records nothing more once the interceptor has claimed the request (sync mode)', () => {
    const { request, response, written } = tracked();
    request.begin();
    expect(request.claim()).toBe(true);
    response.finish(201);
    expect(request.claim()).toBe(false);
    expect(written).toEqual([]);
  });

  it('writes no second row for a request its handler recorded atomically, unless it failed', () => {
    const ok = tracked();
    ok.request.begin();
    ok.request.observe({ kind: 'settled', outcome: 'success', recordedAtomically: true });
    ok.response.finish(201);
    expect(ok.written).toEqual([]);
    const refused = tracked();
    refused.request.begin();
    refused.request.observe({ kind: 'settled', outcome: 'success', recordedAtomically: true });
    refused.response.finish(409);
    expect(refused.written).toEqual([{ outcome: 'failure', statusCode: 409, result: undefined, error: undefined }]);
  });

  it('says so when the client went away before the response was finished', () => {
    const { request, response, written } = tracked();
    request.begin();
    response.emit('close');
    request.observe({ kind: 'settled', outcome: 'success', recordedAtomically: false });
    expect(written).toEqual([{ outcome: 'success', statusCode: 201, reason: 'client_closed' }]);
  });
});
