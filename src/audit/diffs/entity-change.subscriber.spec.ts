import { type DiscoveryService } from '@nestjs/core';
import { type QueryRunner, type UpdateEvent } from 'typeorm';
import { auditScope, currentAuditContext, takeEntityChanges } from '../audit-context';
import { resolveAuditOptions } from '../audit-options';
import { ConsoleSink } from '../sinks';
import { EntityChangeSubscriber } from './entity-change.subscriber';

class Nda {}

/** A subscriber that audits `Nda` (as watch() would set it up), with stderr lines collected. */
function subscriber(lines: unknown[]) {
  const sink = new ConsoleSink();
  jest.spyOn(sink, 'emit').mockImplementation((event, level, fields) => lines.push({ event, level, ...fields }) > 0);
  const audited = new EntityChangeSubscriber(resolveAuditOptions({ diffs: { entities: [Nda] } }), {} as DiscoveryService, sink);
  const dataSource = {
    isInitialized: true,
    entityMetadatas: [{ target: Nda, name: 'Nda', tableName: 'nda', foreignKeys: [], relationsWithJoinColumns: [] }],
    subscribers: [] as unknown[],
  };
  expect(audited.watch(dataSource as never)).toBe(true);
  expect(dataSource.subscribers).toEqual([audited]);
  return audited;
}

/** An event whose metadata throws when read, as a TypeORM fault would. */
function brokenEvent(): UpdateEvent<unknown> {
  const metadata = { target: Nda, name: 'Nda', relationsWithJoinColumns: [] };
  Object.defineProperty(metadata, 'columns', {
    get: () => {
      throw new Error('columns unreadable: token=abc123');
    },
  });
  return { metadata, queryRunner: { isTransactionActive: false } as QueryRunner, entity: {}, databaseEntity: {} } as never;
}

describe('EntityChangeSubscriber', () => {
  it('counts a capture fault, says so in one line, marks the change omitted, and never throws', () => {
    const lines: unknown[] = [];
    const audited = subscriber(lines);
    const taken = auditScope(() => {
      expect(() => audited.afterUpdate(brokenEvent())).not.toThrow();
      return takeEntityChanges(currentAuditContext());
    });
    expect(taken).toEqual({ entities: [], entitiesOmitted: 1 });
    expect(audited.faults).toBe(1);
    expect(lines).toEqual([
      expect.objectContaining({
        event: 'audit.diff_failed',
        level: 'warn',
        entityType: 'Nda',
        error: { name: 'Error', message: 'columns unreadable: token=[REDACTED]' },
      }),
    ]);
  });

  it('does nothing outside an audit context, and for entities it does not audit', () => {
    const lines: unknown[] = [];
    const audited = subscriber(lines);
    audited.afterUpdate(brokenEvent());
    auditScope(() => audited.afterUpdate({ ...brokenEvent(), metadata: { target: class Other {} } } as never));
    expect(audited.faults).toBe(0);
    expect(lines).toEqual([]);
  });

  it('leaves a DataSource without audited entities, or not initialized, alone', () => {
    const audited = new EntityChangeSubscriber(resolveAuditOptions({}), {} as DiscoveryService, new ConsoleSink());
    const other = { isInitialized: true, entityMetadatas: [{ target: Nda, name: 'Nda' }], subscribers: [] as unknown[] };
    const closed = { isInitialized: false, entityMetadatas: [], subscribers: [] as unknown[] };
    expect(audited.watch(other as never)).toBe(false);
    expect(audited.watch(closed as never)).toBe(false);
    expect([other.subscribers, closed.subscribers]).toEqual([[], []]);
  });
});
