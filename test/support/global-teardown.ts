import { runId, sweepLeftovers } from './leftovers';

/** Removes the clusters and builds this run left behind: suites that failed before their afterAll cleaned up. */
export default function globalTeardown(): void {
  sweepLeftovers(runId());
}
