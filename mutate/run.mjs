// `npm run mutate [group…]`: runs StrykerJS on each group of mutate/groups.mjs (all by default), one after another.
import { spawnSync } from 'node:child_process';
import { GROUPS } from './groups.mjs';

const names = process.argv.slice(2);
for (const name of names.length > 0 ? names : Object.keys(GROUPS)) {
  if (!GROUPS[name]) {
    console.error(`unknown group "${name}": ${Object.keys(GROUPS).join(', ')}`);
    process.exit(2);
  }
  console.log(`\n== mutate ${name}: ${GROUPS[name].mutate.join(', ')}`);
  const run = spawnSync('npx', ['stryker', 'run', 'mutate/stryker.conf.mjs'], {
    stdio: 'inherit',
    env: { ...process.env, MUTATE_GROUP: name },
  });
  if (run.status !== 0) process.exit(run.status ?? 1);
}
