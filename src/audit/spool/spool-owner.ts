import { randomBytes } from 'node:crypto';
import { readlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { type SpoolFiles } from './spool-files';

/** What a process sharing the spool directory says of itself in `<id>.owner`, refreshed on a timer. */
export interface OwnerRecord {
  id: string;
  hostname: string;
  pid: number;
  /** Linux pid namespace: a pid means the same process only inside the same one. */
  pidNamespace: string | null;
  heartbeatAt: number;
}

const OWNER_FILE = /^([0-9a-f]{12})\.owner$/;
const HOST = hostname();
const PID_NAMESPACE = ((): string | null => {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return null;
  }
})();

/**
 * This process's claim on its part of a spool directory shared with other processes (a rolling
 * deploy on a shared volume): an id that names its segments, and a record with a lease. Another
 * owner is gone when its lease expired, or when it ran on this host and its pid is dead.
 *
 * @example
 * const owner = new SpoolOwner(dir, nodeSpoolFiles, 30_000);
 * await owner.beat(); // writes `<dir>/<owner.id>.owner`
 */
export class SpoolOwner {
  readonly id = randomBytes(6).toString('hex');
  private timer: NodeJS.Timeout | undefined;
  private claimed = false;

  constructor(
    private readonly dir: string,
    private readonly files: SpoolFiles,
    readonly leaseMs: number,
  ) {}

  /** Writes this owner's record afresh (atomically: a reader never sees half of it). */
  async beat(): Promise<void> {
    const record: OwnerRecord = { id: this.id, hostname: HOST, pid: process.pid, pidNamespace: PID_NAMESPACE, heartbeatAt: Date.now() };
    const temporary = join(this.dir, `.${this.id}.owner.tmp`);
    await this.files.writeFile(temporary, JSON.stringify(record), 0o600);
    await this.files.rename(temporary, join(this.dir, `${this.id}.owner`));
    this.claimed = true;
  }

  /** Writes the record again if it was given up (a spool used after `close()`). */
  async claim(): Promise<void> {
    if (!this.claimed) await this.beat();
  }

  /** False when the record is gone: another process took this owner for dead and adopted its segments. */
  async holds(): Promise<boolean> {
    return this.files.readFile(join(this.dir, `${this.id}.owner`)).then(
      () => true,
      (error: { code?: string }) => error.code !== 'ENOENT',
    );
  }

  /** Calls `heartbeat` every third of the lease, without keeping the process alive, until released. */
  start(heartbeat: () => Promise<void>): void {
    let beating = false;
    this.timer = setInterval(
      () => {
        if (beating) return;
        beating = true;
        void heartbeat()
          .catch(() => undefined)
          .finally(() => (beating = false));
      },
      Math.max(10, Math.floor(this.leaseMs / 3)),
    );
    this.timer.unref();
  }

  async release(): Promise<void> {
    clearInterval(this.timer);
    this.claimed = false;
    await this.files.unlink(join(this.dir, `${this.id}.owner`)).catch(() => undefined);
  }

  /** The other owners whose records are among `names`: their record, or `null` when unreadable. */
  async others(names: string[]): Promise<Map<string, OwnerRecord | null>> {
    const owners = new Map<string, OwnerRecord | null>();
    for (const id of names.map((n) => OWNER_FILE.exec(n)?.[1]).filter((id) => id && id !== this.id) as string[]) {
      const text = await this.files.readFile(join(this.dir, `${id}.owner`)).catch(() => null);
      owners.set(id, parseRecord(text));
    }
    return owners;
  }

  /** Whether the owner of this record (`null`: unreadable, `undefined`: none) can have its segments adopted. */
  isGone(record: OwnerRecord | null | undefined, now = Date.now()): boolean {
    if (!record || now - record.heartbeatAt > this.leaseMs) return true;
    if (record.hostname !== HOST || record.pidNamespace !== PID_NAMESPACE) return false;
    // The same pid under another id is an earlier life of this very process (a restarted container).
    return record.pid === process.pid || !isAlive(record.pid);
  }

  /** Removes the record of an owner whose segments were adopted. */
  async bury(id: string): Promise<void> {
    await this.files.unlink(join(this.dir, `${id}.owner`)).catch(() => undefined);
    await this.files.unlink(join(this.dir, `.${id}.owner.tmp`)).catch(() => undefined);
  }
}

function parseRecord(text: string | null): OwnerRecord | null {
  try {
    const record = JSON.parse(text ?? '') as OwnerRecord;
    return typeof record.pid === 'number' && typeof record.heartbeatAt === 'number' ? record : null;
  } catch {
    return null;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}
