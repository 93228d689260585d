import { beginRun, sweepLeftovers } from './leftovers';

/** Names this run for its workers, and removes what killed runs left in the temporary directories. */
export default function globalSetup(): void {
  beginRun();
  sweepLeftovers();
}
