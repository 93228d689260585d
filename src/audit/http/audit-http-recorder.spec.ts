import { type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host';
import { EventEmitter } from 'node:events';
import { type ResolvedAuditOptions } from '../audit-options';
import { type AuditService } from '../audit.service';
import { AuditHttpRecorder } from './audit-http-recorder';

class NdasController {
  create(): void {}
}

/** A request as Express hands it over, and Node's response: a status and `finish`/`close` events. */
function exchange(request: Record<string, unknown> = { method: 'POST', headers: {}, body: { title: 'NDA' } }) {
  const response = Object.assign(new EventEmitter(), { statusCode: 201, writableFinished: true });
  const context = (): ExecutionContext =>
    new ExecutionContextHost([request, response, () => undefined], NdasController, NdasController.prototype.create);
  return { request, response, context };
}

describe('AuditHttpRecorder', () => {
  const logged: unknown[] = [];
  const audit = { log: (entry: unknown) => (logged.push(entry), Promise.resolve()) } as unknown as AuditService;
  const options = { auditHttp: true, mode: 'async', userIdFrom: () => 'u-1' } as unknown as ResolvedAuditOptions;
  const recorder = () => new AuditHttpRecorder(new Reflector(), audit, options);

  beforeEach(() => (logged.length = 0));

  it('gives the guard and the interceptor one tracker per request, and leaves no key the app can see on it', () => {
    const { request, response, context } = exchange();
    const keys = Reflect.ownKeys(request).filter((key) => Object.getOwnPropertyDescriptor(request, key)?.enumerable);
    const json = JSON.stringify(request);
    const rec = recorder();
    const tracked = rec.track(context());
    expect(tracked).toBeDefined();
    expect(rec.track(context())).toBe(tracked);
    expect(Reflect.ownKeys(request).filter((key) => Object.getOwnPropertyDescriptor(request, key)?.enumerable)).toEqual(keys);
    expect(JSON.stringify(request)).toBe(json);
    tracked?.begin();
    tracked?.observe({ kind: 'settled', outcome: 'success', result: { id: 'n-1' } });
    response.emit('finish');
    expect(logged).toEqual([expect.objectContaining({ entityId: 'n-1', outcome: 'success', changes: { body: { title: 'NDA' } } })]);
  });

  it('keeps one tracker per request for a request that takes no new property (frozen)', () => {
    const { response, context } = exchange(Object.freeze({ method: 'PATCH', headers: {}, body: { title: 'B' }, params: { id: 'n-2' } }));
    const rec = recorder();
    const tracked = rec.track(context());
    expect(rec.track(context())).toBe(tracked);
    tracked?.begin();
    tracked?.observe({ kind: 'settled', outcome: 'success' });
    response.emit('finish');
    expect(logged).toEqual([expect.objectContaining({ entityId: 'n-2', outcome: 'success' })]);
  });

  it('keeps the trackers of two recorders apart on the same request', () => {
    const { context } = exchange();
    const one = recorder();
    const other = recorder();
    const tracked = one.track(context());
    expect(other.track(context())).not.toBe(tracked);
    expect(one.track(context())).toBe(tracked);
  });

  it('tracks no GET', () => {
    const { context } = exchange({ method: 'GET', headers: {} });
    expect(recorder().track(context())).toBeUndefined();
  });
});
