/**
 * What `npm run mutate` mutates, one group at a time: the files where a silent bug costs most, each
 * against its own specs only (unit specs, no PostgreSQL), so that a group runs in minutes.
 *
 * @example
 * GROUPS.circuit; // { mutate: ['src/audit/audit-circuit.ts'], specs: ['src/audit/audit-circuit.spec.ts'] }
 */
export const GROUPS = {
  circuit: { mutate: ['src/audit/audit-circuit.ts'], specs: ['src/audit/audit-circuit.spec.ts'] },
  'write-queue': { mutate: ['src/audit/audit-write-queue.ts'], specs: ['src/audit/audit-write-queue.spec.ts'] },
  'line-parts': {
    mutate: ['src/audit/sinks/line-parts.ts'],
    specs: ['src/audit/sinks/console.sink.spec.ts', 'src/audit/sinks/line-parts.spec.ts'],
  },
  redaction: { mutate: ['src/audit/redaction.ts'], specs: ['src/audit/redaction.spec.ts', 'src/audit/audit-entry.spec.ts'] },
  'json-safe': {
    mutate: ['src/audit/json-safe.ts'],
    specs: [
      'src/audit/json-safe.spec.ts',
      'src/audit/audit-entry.spec.ts',
      'src/audit/audit-entry.hostile.spec.ts',
      'src/audit/redaction.spec.ts',
    ],
  },
  integrity: {
    mutate: ['src/audit/integrity/merkle.ts', 'src/audit/integrity/seal.ts', 'src/audit/integrity/integrity-options.ts'],
    specs: ['src/audit/integrity/merkle.spec.ts', 'src/audit/integrity/seal.spec.ts', 'src/audit/integrity/integrity-options.spec.ts'],
  },
};
