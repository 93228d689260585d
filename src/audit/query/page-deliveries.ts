import { type ServerResponse } from 'node:http';
import { type Socket } from 'node:net';
import { AuditReadError } from '../audit.errors';
import { fitsIn } from './answer-size';

/**
 * Page answers of at most this many bytes are never refused: the kernel's socket buffers take most
 * of them whole at once, and one that waits holds the app no more than any small HTTP answer does.
 *
 * @example
 * const small = fitsIn(page, SMALL_ANSWER_BYTES);
 */
export const SMALL_ANSWER_BYTES = 64 * 1024;

/**
 * Bounds the page answers (`GET <path>`, `…/entities/:type/:id`, `…/rows/:id`) that wait for
 * their clients. A page is one JSON answer of up to 500 rows, each up to `maxEntryBytes`:
 * written at once, what the connection cannot take yet stays in the process until its client
 * reads it, so clients that ask and never read would hold memory without bound. When a page is
 * ready while `max` answers still hold bytes their clients have not taken, it is refused
 * (`AUDIT_READ_BUSY`, 503 with `Retry-After`), unless it is small ({@link SMALL_ANSWER_BYTES});
 * and a client that takes nothing of its answer for `idleMs` loses its connection, as a stalled
 * export does. An answer counts whether its client reads it slowly or not at all: the kernel
 * takes the first megabytes of every answer at once, so the two look alike for seconds, and
 * clients that took a few bytes now and then would hold memory without bound if readers never
 * counted.
 *
 * @example
 * const deliveries = new PageDeliveries(options.readConnections, options.exportIdleMs, 5);
 * const page = await deliveries.deliver(response, () => queries.search({ action: 'nda_deleted' })); // response: @Res({ passthrough: true })
 */
export class PageDeliveries {
  /** Answers handed to their connections and not delivered yet. */
  private readonly sent = new Set<ServerResponse>();

  constructor(
    private readonly max: number,
    private readonly idleMs: number,
    private readonly retryAfterSeconds: number,
  ) {}

  /**
   * Runs `work` for the answer to `response` (Express's response or Fastify's reply), then lets the
   * answer go out unless `max` others still hold bytes their clients have not taken and the answer
   * is not small: then it throws {@link AuditReadError} (`AUDIT_READ_BUSY`), with `Retry-After`
   * set on the response.
   */
  async deliver<T>(response: unknown, work: () => Promise<T>): Promise<T> {
    const raw = rawResponse(response);
    const answer = await work();
    if (!raw) return answer;
    let waiting = 0;
    for (const other of this.sent) if (other.writableLength > 0) waiting += 1;
    // Measured only when the answer would be refused: a full page costs a walk of its first 64 KiB.
    if (waiting >= this.max && !fitsIn(answer, SMALL_ANSWER_BYTES)) {
      (response as { header?: (name: string, value: string) => unknown }).header?.('Retry-After', String(this.retryAfterSeconds));
      throw AuditReadError.pagesBusy(this.max, this.retryAfterSeconds);
    }
    this.sent.add(raw);
    let socket: Socket | null = null;
    const stalled = () => socket?.destroy();
    const arm = (given: Socket) => {
      socket = given;
      socket.setTimeout(this.idleMs, stalled);
    };
    // A pipelined request's answer gets its connection once the answers before it are out.
    if (raw.socket) arm(raw.socket);
    else raw.once('socket', arm);
    raw.once('close', () => {
      this.sent.delete(raw);
      raw.off('socket', arm);
      // Only this answer's listener goes: the connection's own timeouts (keepAliveTimeout, set as the answer ended) stay.
      socket?.off('timeout', stalled);
    });
    return answer;
  }
}

function rawResponse(response: unknown): ServerResponse | undefined {
  const candidate = ((response as { raw?: unknown } | undefined)?.raw ?? response) as Partial<ServerResponse> | undefined;
  return typeof candidate?.once === 'function' && 'socket' in candidate ? (candidate as ServerResponse) : undefined;
}
