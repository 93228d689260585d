import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy to PostgreSQL that hands the app each error apart from what follows it: the server's
 * bytes after an ErrorResponse reach the app `delayMs` later, so that `pg` settles the failed query
 * before it reads the ReadyForQuery, with the transaction status that comes in it. PostgreSQL
 * flushes an error on its own, so a loaded machine or a network may deliver them so at any time;
 * here it happens every time. Everything else passes through unchanged and in order.
 *
 * @example
 * const proxy = await SplitAnswerProxy.start(db.port, 50);
 * // postgres://…@127.0.0.1:${proxy.port}/…: each failed query's ReadyForQuery comes 50 ms after its error
 * await proxy.stop();
 */
export class SplitAnswerProxy {
  /** Errors whose following bytes were held back. */
  splits = 0;
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly delayMs: number,
  ) {}

  static async start(targetPort: number, delayMs: number): Promise<SplitAnswerProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new SplitAnswerProxy(server, (server.address() as { port: number }).port, delayMs);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    return proxy;
  }

  /** Closes the listener and every connection. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, targetPort: number): void {
    const upstream = createConnection({ port: targetPort, host: '127.0.0.1' });
    for (const socket of [client, upstream]) {
      this.sockets.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => this.sockets.delete(socket));
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    // Backend messages: a type byte, then a length (itself included). The app sends no SSLRequest, so all are typed.
    let pending = Buffer.alloc(0);
    // Writes to the app, in order: each waits for the one before it (a held-back write delays those after it).
    let sent = Promise.resolve();
    const send = (bytes: Buffer, afterMs: number) => {
      sent = sent
        .then(() => (afterMs > 0 ? new Promise<void>((resolve) => setTimeout(resolve, afterMs)) : undefined))
        .then(() => {
          if (!client.destroyed) client.write(bytes);
        });
    };
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      let start = 0;
      let at = 0;
      while (pending.length - at >= 5) {
        const end = at + 1 + pending.readUInt32BE(at + 1);
        if (end > pending.length) break;
        const type = String.fromCharCode(pending[at]);
        at = end;
        if (type === 'E') {
          send(pending.subarray(start, at), 0);
          start = at;
          this.splits += 1;
          // What follows the error (its ReadyForQuery) comes later.
          send(Buffer.alloc(0), this.delayMs);
        }
      }
      if (at > start) send(pending.subarray(start, at), 0);
      pending = pending.subarray(at);
    });
  }
}
