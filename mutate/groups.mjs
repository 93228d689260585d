/**
 * What `npm run mutate` mutates, one group at a time: the files where a silent bug costs most, each
 * against its own specs only (unit specs, no PostgreSQL), so that a group runs in minutes.
 *
 * @example
 * GROUPS.circuit; // { mutate: ['src/audit/audit-circuit.ts'], specs: ['src/audit/audit-circuit.spec.ts'] }
 */
export const GROUPS = {
  circuit: {
    mutate: ['src/audit/audit-circuit.ts'],
    specs: ['src/audit/audit-circuit.spec.ts', 'src/audit/audit-circuit.mutation.spec.ts'],
  },
  'write-queue': {
    mutate: ['src/audit/audit-write-queue.ts'],
    specs: [
      'src/audit/audit-write-queue.spec.ts',
      'src/audit/audit-write-queue.flush.spec.ts',
      'src/audit/audit-write-queue.linger.spec.ts',
      'src/audit/audit-write-queue.mutation.spec.ts',
    ],
  },
  'line-parts': {
    mutate: ['src/audit/sinks/line-parts.ts'],
    specs: ['src/audit/sinks/console.sink.spec.ts', 'src/audit/sinks/line-parts.spec.ts'],
  },
  redaction: {
    mutate: ['src/audit/redaction.ts', 'src/audit/redaction-values.ts'],
    specs: ['src/audit/redaction.spec.ts', 'src/audit/audit-entry.spec.ts'],
  },
  'json-safe': {
    mutate: ['src/audit/json-safe.ts'],
    specs: [
      'src/audit/json-safe.spec.ts',
      'src/audit/json-safe.mutation.spec.ts',
      'src/audit/audit-entry.spec.ts',
      'src/audit/audit-entry.hostile.spec.ts',
      'src/audit/redaction.spec.ts',
    ],
  },
  integrity: {
    mutate: ['src/audit/integrity/merkle.ts', 'src/audit/integrity/seal.ts', 'src/audit/integrity/integrity-options.ts'],
    specs: [
      'src/audit/integrity/merkle.spec.ts',
      'src/audit/integrity/seal.spec.ts',
      'src/audit/integrity/seal.mutation.spec.ts',
      'src/audit/integrity/integrity-options.spec.ts',
    ],
  },
  witness: {
    mutate: ['src/audit/integrity/witness.ts'],
    specs: ['src/audit/integrity/witness.spec.ts', 'src/audit/integrity/witness.mutation.spec.ts'],
  },
  // The SQL texts of these files (column lists, LEAF_SQL, ROW_PROBLEM_SQL) are held by the PostgreSQL suites only.
  'row-encoding': {
    mutate: [
      'src/audit/integrity/row-encoding.ts:77-162',
      'src/audit/integrity/entry-encoding.ts',
      'src/audit/integrity/jsonb-render.ts',
      'src/audit/integrity/entry-checks.ts',
    ],
    specs: [
      'src/audit/integrity/row-encoding.mutation.spec.ts',
      'src/audit/integrity/entry-encoding.mutation.spec.ts',
      'src/audit/integrity/entry-encoding.fast-path.mutation.spec.ts',
      'src/audit/integrity/entry-digest.fast-path.spec.ts',
      'src/audit/integrity/entry-checks.mutation.spec.ts',
      'src/audit/integrity/entry-auth.spec.ts',
      'src/audit/integrity/seal.spec.ts',
    ],
  },
  'entry-auth': {
    mutate: ['src/audit/integrity/entry-auth.ts'],
    specs: [
      'src/audit/integrity/entry-auth.spec.ts',
      'src/audit/integrity/entry-auth.mutation.spec.ts',
      'src/audit/integrity/entry-checks.mutation.spec.ts',
    ],
  },
  // The row read's trust in the seal it relies on and in an erasure entry (the SQL is held by the query suites).
  'row-trust': {
    mutate: ['src/audit/query/row-trust.ts'],
    specs: ['src/audit/query/row-trust.spec.ts'],
  },
  'sealer-io': {
    mutate: ['src/audit/db-session.ts', 'src/audit/integrity/sealer-session.ts', 'src/audit/integrity/chain-memory.ts'],
    specs: [
      'src/audit/db-session.spec.ts',
      'src/audit/integrity/sealer-session.spec.ts',
      'src/audit/integrity/sealer-session.mutation.spec.ts',
      'src/audit/integrity/chain-memory.spec.ts',
      'src/audit/integrity/chain-memory.mutation.spec.ts',
    ],
  },
  // The sealer's decisions and deadlines, out of audit-sealer.ts, whose remaining code drives PostgreSQL and is held by the integrity suites.
  sealer: {
    mutate: ['src/audit/integrity/sealer-timing.ts', 'src/audit/integrity/sealer-outcome.ts'],
    specs: ['src/audit/integrity/sealer-timing.mutation.spec.ts', 'src/audit/integrity/sealer-outcome.mutation.spec.ts'],
  },
  // The verifier's checks, out of verifier.ts, whose remaining code reads PostgreSQL and is held by the integrity suites.
  'verify-checks': {
    mutate: ['src/audit/integrity/verify-checks.ts'],
    specs: ['src/audit/integrity/verify-checks.spec.ts', 'src/audit/integrity/verify-checks.mutation.spec.ts'],
  },
  // Only the parts that reach no database, and the months retention removed (sealOnce against a connection that answers as
  // PostgreSQL does): the rest of these files is held by the PostgreSQL suites.
  'seal-store': {
    mutate: [
      'src/audit/integrity/seal-store.ts:56-101',
      'src/audit/integrity/seal-store.ts:110-136',
      'src/audit/integrity/seal-store.ts:250-266',
      'src/audit/integrity/seal-store.ts:367-369',
      'src/audit/integrity/search-path.ts',
    ],
    specs: [
      'src/audit/integrity/seal-store.mutation.spec.ts',
      'src/audit/integrity/seal-store.retired.mutation.spec.ts',
      'src/audit/integrity/search-path.mutation.spec.ts',
    ],
  },
  'verify-command': {
    mutate: [
      'src/audit/integrity/verify-command.ts:48-77',
      'src/audit/integrity/verify-command.ts:113-116',
      'src/audit/integrity/verify-command.ts:198-246',
      'src/audit/integrity/verify-command.ts:260-267',
    ],
    specs: ['src/audit/integrity/verify-command.mutation.spec.ts'],
  },
  // The rules by which the sealer refuses to build on a seal; not the statement that reads their context (trustContextSql), held by the PostgreSQL suites.
  'seal-trust': {
    mutate: ['src/audit/integrity/seal-trust.ts:42-99', 'src/audit/integrity/seal-trust.ts:130-144'],
    specs: ['src/audit/integrity/seal-trust.spec.ts', 'src/audit/integrity/seal-trust.mutation.spec.ts'],
  },
  // Erasure's checks, the parsing of the personal columns and the reads that put the values back; not the SQL texts
  // of personal-checks.ts (the erasure entries, the checkpoints' carried erasures), held by the erasure suites.
  personal: {
    mutate: [
      'src/audit/privacy/personal-checks.ts:41-82',
      'src/audit/privacy/personal-checks.ts:85-151',
      'src/audit/privacy/personal-checks.ts:153-192',
      'src/audit/privacy/personal-verdict.ts',
      'src/audit/privacy/personal-values.ts:40-47',
      'src/audit/privacy/personal-values.ts:129-181',
      'src/audit/privacy/personal-reveal.ts',
    ],
    specs: [
      'src/audit/privacy/personal-checks.mutation.spec.ts',
      'src/audit/privacy/personal-values.mutation.spec.ts',
      'src/audit/privacy/personal-reveal.mutation.spec.ts',
      'src/audit/privacy/personal-verdict.spec.ts',
      'src/audit/privacy/privacy-options.spec.ts',
    ],
  },
  // Rows an erasure should have taken (row_not_erased); not the statement that reads the erasure entries, held by the erasure suites.
  'erasure-coverage': {
    mutate: ['src/audit/privacy/erasure-coverage.ts:69-117', 'src/audit/uuidv7.ts:53-56'],
    specs: ['src/audit/privacy/erasure-coverage.spec.ts', 'src/audit/privacy/erasure-coverage.mutation.spec.ts'],
  },
  // The commands' options, each given at most once unless declared multiple.
  'command-args': {
    mutate: ['src/audit/command-args.ts'],
    specs: ['src/audit/command-args.mutation.spec.ts', 'src/audit/command-args.spec.ts'],
  },
  // The sealer on credentials of its own: what its role lacks, whether the app's role may insert seals, which pool seals go through.
  'sealer-roles': {
    mutate: [
      'src/audit/integrity/sealer-roles.ts:19-23',
      'src/audit/integrity/sealer-roles.ts:34-35',
      'src/audit/integrity/sealer-connection.ts',
    ],
    specs: ['src/audit/integrity/sealer-roles.mutation.spec.ts', 'src/audit/integrity/sealer-connection.mutation.spec.ts'],
  },
  // What audit:replay and recovery hold back after an erasure; not its two SQL texts, held by the erasure-replay suites.
  'replay-guard': {
    mutate: [
      'src/audit/privacy/replay-guard.ts:1-49',
      'src/audit/privacy/replay-guard.ts:54-57',
      'src/audit/privacy/replay-guard.ts:59-118',
      'src/audit/uuidv7.ts:53-56',
    ],
    specs: ['src/audit/privacy/replay-guard.mutation.spec.ts'],
  },
  // How an archived month is written and read back: its seals, entry digests, row checks and leaves.
  'archive-format': {
    mutate: ['src/audit/lifecycle/archive-format.ts'],
    specs: ['src/audit/lifecycle/archive-format.spec.ts', 'src/audit/lifecycle/archive-format.mutation.spec.ts'],
  },
  // The month and trail an archive names, held to its rows, its month's retention checkpoint and the witness.
  'archive-label': {
    mutate: ['src/audit/lifecycle/archive-label.ts'],
    specs: ['src/audit/lifecycle/archive-label.spec.ts'],
  },
  // Retention's pure parts: the checkpoint's bitmaps of retained rows, its options (the legal hold), month arithmetic.
  lifecycle: {
    mutate: [
      'src/audit/lifecycle/checkpoint.ts',
      'src/audit/lifecycle/retention-options.ts',
      'src/audit/lifecycle/month-partitions.ts:18-42',
    ],
    specs: [
      'src/audit/lifecycle/checkpoint.spec.ts',
      'src/audit/lifecycle/retention-options.spec.ts',
      'src/audit/lifecycle/lifecycle.mutation.spec.ts',
    ],
  },
  // The SHA-256 of one 64-byte block in JavaScript (the leaves and entry digests of short rows), and the witness lines.
  'sha256-block': {
    mutate: ['src/audit/integrity/sha256-block.ts'],
    specs: ['src/audit/integrity/sha256-block.spec.ts'],
  },
  'witness-line': {
    mutate: ['src/audit/integrity/witness-line.ts'],
    specs: ['src/audit/integrity/witness-line.spec.ts'],
  },
};
