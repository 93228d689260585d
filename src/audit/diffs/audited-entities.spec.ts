import 'reflect-metadata';
import { type EntityMetadata } from 'typeorm';
import { auditedEntityRule } from './audited-entities';
import { AuditedEntity, auditedEntityOptions } from './audited-entity.decorator';

@AuditedEntity({ type: 'Person', exclude: ['salary'] })
class Person {}

class Staff extends Person {}

@AuditedEntity({ type: 'Employee', exclude: ['badge'] })
class Employee extends Staff {}

@AuditedEntity()
class Intern extends Employee {}

const metadataOf = (target: { name: string }) => ({ target, name: target.name }) as unknown as EntityMetadata;

describe('audited entity rules along a class chain', () => {
  it("keeps a parent's exclusions beside a subclass's own, with the nearest type", () => {
    expect(auditedEntityOptions(Person)).toEqual({ type: 'Person', exclude: ['salary'] });
    expect(auditedEntityOptions(Staff)).toEqual({ type: 'Person', exclude: ['salary'] });
    expect(auditedEntityOptions(Employee)).toEqual({ type: 'Employee', exclude: ['badge', 'salary'] });
    expect(auditedEntityOptions(Intern)).toEqual({ type: 'Employee', exclude: ['badge', 'salary'] });
    expect(auditedEntityOptions(class Plain {})).toBeUndefined();
  });

  it('applies what the diffs option excludes from a parent, by class name or type, to its subclasses', () => {
    const diffs = { entities: [], exclude: { Person: ['nickname'], Staff: ['desk'], Intern: ['mentor'] } };
    expect([...(auditedEntityRule(metadataOf(Intern), diffs)?.exclude ?? [])].sort()).toEqual([
      'badge',
      'desk',
      'mentor',
      'nickname',
      'salary',
    ]);
    expect([...(auditedEntityRule(metadataOf(Person), diffs)?.exclude ?? [])].sort()).toEqual(['nickname', 'salary']);
  });

  it('audits an entity extending one named in the option, by class or by name, under its own name', () => {
    class Vehicle {}
    class Truck extends Vehicle {}
    class Bicycle {}
    const diffs = { entities: [Vehicle], exclude: { Vehicle: ['plate'] } };
    expect(auditedEntityRule(metadataOf(Truck), diffs)).toEqual({ type: 'Truck', exclude: new Set(['plate']) });
    expect(auditedEntityRule(metadataOf(Truck), { entities: ['Vehicle'], exclude: {} })?.type).toBe('Truck');
    expect(auditedEntityRule(metadataOf(Bicycle), diffs)).toBeUndefined();
    expect(auditedEntityRule(metadataOf(Vehicle), { entities: [Truck], exclude: {} })).toBeUndefined();
  });
});
