/** A UUID in PostgreSQL's input form with hyphens, in any case: exactly 36 characters. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An entity id as rows store it and lookups match it: a UUID in its canonical lower-case form
 * (PostgreSQL's text of a `uuid`, as TypeORM hands entities back), any other id as it is. A route
 * checked by `ParseUUIDPipe` accepts either case: both spellings name one entity, and one row.
 *
 * @example
 * canonicalEntityId('0193A1C2-7B3E-7C4D-8E5F-0A1B2C3D4E5F'); // '0193a1c2-7b3e-7c4d-8e5f-0a1b2c3d4e5f'
 * canonicalEntityId('ORDER-42'); // 'ORDER-42'
 */
export function canonicalEntityId(id: string): string {
  return id.length === 36 && UUID.test(id) ? id.toLowerCase() : id;
}

/**
 * The other spellings a UUID entity id may be stored under, by a version that kept the id as the
 * caller spelled it: `given` as it was passed, and all capitals. None for an id that is no UUID.
 *
 * @example
 * legacyEntityIdSpellings('0193A1C2-7b3e-7c4d-8e5f-0a1b2c3d4e5f'); // ['0193A1C2-7b3e-7c4d-8e5f-0a1b2c3d4e5f', '0193A1C2-7B3E-7C4D-8E5F-0A1B2C3D4E5F']
 */
export function legacyEntityIdSpellings(given: string): string[] {
  if (given.length !== 36 || !UUID.test(given)) return [];
  const canonical = given.toLowerCase();
  return [...new Set([given, canonical.toUpperCase()])].filter((spelling) => spelling !== canonical);
}
