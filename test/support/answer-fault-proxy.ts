import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * What becomes of the server's bytes after an ErrorResponse: `hold` keeps them (the ReadyForQuery
 * with the transaction status among them) until {@link AnswerFaultProxy.release}, as a network
 * partition that begins right after the error would; `{ delayMs }` hands them over that much later,
 * so that `pg` settles the failed query before it reads the ReadyForQuery (PostgreSQL flushes an
 * error on its own: a loaded machine or a network may deliver them so at any time; here it happens
 * every time); `pass` lets them through (for {@link AnswerFaultProxy.gather}).
 */
export type AfterError = 'hold' | 'pass' | { delayMs: number };

/**
 * A TCP proxy to PostgreSQL that hands the app each error, then does `afterError` with what follows
 * it. Everything before the error passes through unchanged and in order.
 *
 * @example
 * const proxy = await AnswerFaultProxy.start(db.port, 'hold');
 * // postgres://…@127.0.0.1:${proxy.port}/…: a failed query's ReadyForQuery waits for proxy.release()
 * proxy.release();
 * await proxy.stop();
 * const apart = await AnswerFaultProxy.start(db.port, { delayMs: 50 }); // each ReadyForQuery after an error comes 50 ms later
 */
export class AnswerFaultProxy {
  /** Errors handed to the app. */
  errors = 0;
  /** Bytes held back, by connection, in order. */
  private readonly held = new Map<Socket, Buffer[]>();
  private readonly sockets = new Set<Socket>();
  private gathering: { wanted: number; seen: number; chunks: Buffer[]; client?: Socket } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly afterError: AfterError,
  ) {}

  static async start(targetPort: number, afterError: AfterError): Promise<AnswerFaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new AnswerFaultProxy(server, (server.address() as { port: number }).port, afterError);
    server.on('connection', (client) => proxy.accept(client, targetPort));
    return proxy;
  }

  /** `hold`: hands the app what was held, and lets what comes next through until the next error. */
  release(): void {
    for (const client of [...this.held.keys()]) this.releaseTo(client);
  }

  private releaseTo(client: Socket): void {
    const chunks = this.held.get(client) ?? [];
    this.held.delete(client);
    if (!client.destroyed) for (const chunk of chunks) client.write(chunk);
  }

  /**
   * From now on, the server's bytes to any connection are held until `readyForQuery` ReadyForQuery
   * messages are among them, then handed over in one write: the answers to queries sent together
   * (pg's pipeline mode) reach the app in one read.
   */
  gather(readyForQuery: number): void {
    this.gathering = { wanted: readyForQuery, seen: 0, chunks: [] };
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
    let pending = Buffer.alloc(0);
    const send = (bytes: Buffer) => {
      if (bytes.length === 0 || client.destroyed) return;
      const gathering = this.gathering;
      if (gathering && (gathering.client ?? client) === client) {
        gathering.client = client;
        gathering.chunks.push(Buffer.from(bytes));
        for (let at = 0; at < bytes.length; at += 1 + bytes.readUInt32BE(at + 1)) if (bytes[at] === 0x5a) gathering.seen += 1;
        if (gathering.seen < gathering.wanted) return;
        this.gathering = undefined;
        client.write(Buffer.concat(gathering.chunks));
        return;
      }
      const held = this.held.get(client);
      if (held) held.push(Buffer.from(bytes));
      else client.write(bytes);
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
        if (type === 'E' && this.afterError !== 'pass' && !this.held.has(client)) {
          send(pending.subarray(start, at));
          start = at;
          this.errors += 1;
          this.held.set(client, []);
          const after = this.afterError;
          if (typeof after === 'object') setTimeout(() => this.releaseTo(client), after.delayMs);
        }
      }
      if (at > start) send(pending.subarray(start, at));
      pending = pending.subarray(at);
    });
  }
}
