import { join } from 'node:path';
import { killAllApps } from './app-process';
import { REPO_ROOT } from './databases';
import { phaseTable, summaryLine, writeResult } from './report';
import { runChaos } from './schedule';

/**
 * `npm run chaos`: the fault schedule against the example app (compiled beside this file into
 * `chaos/dist/src/main.js`) under load; prints the verdict and the per-phase table, writes
 * `chaos/results/latest.json`, and exits 1 on any missing or duplicated audit entry, or when
 * `audit-verify` does not find the sealed trail clean.
 * `CHAOS_PHASE_MS` (default 5000) and `CHAOS_WORKERS` (default 8) size the run.
 */
async function main(): Promise<number> {
  const result = await runChaos({
    main: join(__dirname, '../src/main.js'),
    phaseMs: Number(process.env.CHAOS_PHASE_MS ?? 5000),
    workers: Number(process.env.CHAOS_WORKERS ?? 8),
    overflowBufferSize: 200,
    log: (message) => console.log(message),
  });
  const path = join(REPO_ROOT, 'chaos/results/latest.json');
  writeResult(path, result);
  console.log(`\n${phaseTable(result)}\n`);
  for (const name of result.stalled) {
    const { healthAfter } = result.phases.find((p) => p.phase === name) ?? {};
    console.log(`stalled: after ${name}, not caught up within the window: ${JSON.stringify(healthAfter)}`);
  }
  if (result.fleet) {
    const { rolled, killed, sealerStopped, sealerExitedByItself, sealerStopMs, acknowledgedBy } = result.fleet;
    console.log(`fleet: rolled ${rolled.join(', ')}; SIGKILLed ${killed}; acknowledged ${JSON.stringify(acknowledgedBy)}`);
    console.log(
      sealerStopped
        ? `fleet: ${sealerStopped} stopped ${result.fleet.sealerCaughtMidSeal ? 'mid-seal' : 'after its last seal (none caught mid-seal)'}, ${sealerExitedByItself ? 'exited by itself' : 'needed the SIGKILL'} after ${sealerStopMs} ms`
        : 'fleet: no app was caught sealing',
    );
  }
  if (!result.settled) console.log(`not settled before the count: ${JSON.stringify(result.finalHealth)}`);
  for (const entry of result.missingEntries.slice(0, 10)) console.log(`missing: ${JSON.stringify(entry)}`);
  for (const entry of result.duplicatedEntries.slice(0, 10)) console.log(`duplicated: ${JSON.stringify(entry)}`);
  for (const anomaly of result.integrity.firstAnomalies) console.log(`integrity: ${anomaly}`);
  console.log(`results: ${path}`);
  console.log(summaryLine(result));
  return result.missing === 0 && result.duplicated === 0 && result.integrity.clean ? 0 : 1;
}

process.once('SIGINT', () => {
  killAllApps();
  process.exit(130);
});

main().then(
  (code) => (process.exitCode = code),
  (error: unknown) => {
    killAllApps();
    console.error(error);
    process.exitCode = 1;
  },
);
