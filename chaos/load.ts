import { request } from 'node:http';

/** The audited actions the load produces, one per route. */
export type ChaosAction = 'nda_created' | 'nda_updated' | 'nda_deleted';

/** One request of the load, as the client saw it. */
export interface RequestRecord {
  phase: string;
  app: string;
  action: ChaosAction;
  /** The NDA's id: from the response of a POST, from the path of a PATCH or DELETE. */
  entityId: string | null;
  /** HTTP status, or 0 when no complete response came (refused, reset, timed out). */
  status: number;
  acknowledged: boolean;
  latencyMs: number;
}

/** Where the load goes: the app's name (for the records) and port. */
export interface LoadTarget {
  name: string;
  port: number;
}

const TIMEOUT_MS = 15_000;

/**
 * Concurrent workers, each looping `POST /ndas` → `PATCH /ndas/:id` → `DELETE /ndas/:id` on an NDA
 * of its own (a step only after the previous one was acknowledged), so every request has a unique
 * (entity id, action) pair. Each request is recorded with the phase current when it was sent.
 *
 * @example
 * const load = new Load(() => ({ name: 'sync', port }), 8);
 * load.phase = 'lock';
 * await load.stop(); // load.records
 */
export class Load {
  phase = 'baseline';
  readonly records: RequestRecord[] = [];
  private running = true;
  private readonly workers: Promise<void>[];

  constructor(
    private readonly target: () => LoadTarget,
    workers: number,
  ) {
    this.workers = Array.from({ length: workers }, (_, w) => this.work(w));
  }

  /** Stops sending and resolves once every request in flight has settled. */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  private async work(worker: number): Promise<void> {
    for (let n = 0; this.running; n += 1) {
      const body = { title: `chaos w${worker} n${n}`, counterparty: 'Chaos Ltd' };
      const created = await this.send(worker, 'nda_created', 'POST', '/ndas', body);
      if (!created.acknowledged || !created.entityId || !this.running) continue;
      const id = created.entityId;
      const updated = await this.send(worker, 'nda_updated', 'PATCH', `/ndas/${id}`, { title: `${body.title} v2` }, id);
      if (!updated.acknowledged || !this.running) continue;
      await this.send(worker, 'nda_deleted', 'DELETE', `/ndas/${id}`, undefined, id);
    }
  }

  private async send(
    worker: number,
    action: ChaosAction,
    method: string,
    path: string,
    body: unknown,
    id: string | null = null,
  ): Promise<RequestRecord> {
    const { name, port } = this.target();
    const phase = this.phase;
    const started = performance.now();
    const response = await call(port, method, path, body, `chaos-w${worker}`);
    const acknowledged = response.status >= 200 && response.status < 300;
    const entityId = id ?? (acknowledged ? idOf(response.body) : null);
    const record = { phase, app: name, action, entityId, status: response.status, acknowledged, latencyMs: performance.now() - started };
    this.records.push(record);
    // A refused connection answers at once: do not spin while the app restarts.
    if (response.status === 0) await new Promise((r) => setTimeout(r, 25));
    return record;
  }
}

/** One request on a fresh connection; status 0 when no complete response arrived. */
function call(port: number, method: string, path: string, body: unknown, user: string): Promise<{ status: number; body: string }> {
  const payload = body === undefined ? '' : JSON.stringify(body);
  return new Promise((resolve) => {
    const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-user-id': user };
    const req = request({ host: '127.0.0.1', port, method, path, headers, agent: false, timeout: TIMEOUT_MS }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      // A response cut short by the app's death is no acknowledgement.
      res.on('end', () => resolve({ status: res.complete ? (res.statusCode ?? 0) : 0, body: text }));
      res.on('error', () => resolve({ status: 0, body: '' }));
      res.on('aborted', () => resolve({ status: 0, body: '' }));
    });
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.on('timeout', () => req.destroy());
    req.end(payload);
  });
}

function idOf(body: string): string | null {
  try {
    return (JSON.parse(body) as { id?: string }).id ?? null;
  } catch {
    return null;
  }
}
