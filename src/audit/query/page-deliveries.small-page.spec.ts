// docs/GUIDE.md, "Page answers clients never read": when `readConnections` answers already hold
// bytes their clients have not taken, the next page ready answers 503 `AUDIT_READ_BUSY` unless its
// answer is small (64 KiB at most). A page of ordinary rows (nulls, numbers, nested `changes` and
// `metadata`) is measured close to the bytes JSON writes for it: one of about 46 KB is answered.
import { EventEmitter } from 'node:events';
import { fitsIn } from './answer-size';
import { PageDeliveries, SMALL_ANSWER_BYTES } from './page-deliveries';

/** A stand-in for Node's ServerResponse: what PageDeliveries reads of one (its socket and the bytes its client has not taken). */
function response(writableLength: number): EventEmitter & { socket: null; writableLength: number } {
  return Object.assign(new EventEmitter(), { socket: null, writableLength });
}

/** A row as the read side gives it for a POST /ndas of the example app. */
function row(n: number): Record<string, unknown> {
  const hex = n.toString(16).padStart(12, '0');
  return {
    id: `01938a2e-7b1c-7000-8000-${hex}`,
    occurredAt: new Date(Date.UTC(2026, 10, 1, 12, 0, n % 60)),
    recordedAt: new Date(Date.UTC(2026, 10, 1, 12, 0, n % 60)),
    action: 'ndas.create',
    entityType: 'Nda',
    entityId: `5f0c8a52-1e7b-4c41-9d0e-${hex}`,
    userId: null,
    outcome: 'success',
    ip: null,
    userAgent: null,
    requestId: null,
    changes: { body: { title: `NDA ${n}`, counterparty: 'Hooli' } },
    metadata: { method: 'POST', route: '/ndas', params: {}, statusCode: 201, durationMs: 4 },
    erasedBy: null,
  };
}

describe('a page answer under 64 KiB while another answer waits for its client', () => {
  it('is answered, not refused', async () => {
    const page = { items: Array.from({ length: 100 }, (_, n) => row(n)), nextCursor: null };
    const size = Buffer.byteLength(JSON.stringify(page));
    expect(size).toBeLessThan(SMALL_ANSWER_BYTES);

    const deliveries = new PageDeliveries(1, 60_000, 5);
    const waiting = response(0);
    await deliveries.deliver(waiting, () => Promise.resolve({ items: [], nextCursor: null }));
    // Its client has not taken its bytes yet (a big download under way).
    waiting.writableLength = 1_000_000;

    const outcome = await deliveries
      .deliver(response(0), () => Promise.resolve(page))
      .then(
        () => 'answered',
        (error: { code?: string }) => error.code ?? String(error),
      );
    expect({ size: Math.round(size / 1000), fitsIn: fitsIn(page, SMALL_ANSWER_BYTES), outcome }).toEqual({
      size: Math.round(size / 1000),
      fitsIn: true,
      outcome: 'answered',
    });
  });
});
