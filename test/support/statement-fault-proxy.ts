import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy to PostgreSQL that makes one statement fail on the server: each time the app sends
 * `text` after the first `skip` times, its bytes are replaced by a statement of the same length
 * that fails (`SELECT 1/0`, padded with spaces), so that the server answers with an error
 * (`22012`) and the connection stays open, as a statement refused for a reason of its own would.
 *
 * @example
 * const proxy = await StatementFaultProxy.start(db.port, 'SET search_path = pg_catalog, pg_temp', 1);
 * // the second connection's pin fails with "division by zero"
 * await proxy.stop();
 */
export class StatementFaultProxy {
  /** Times the statement was made to fail. */
  failed = 0;
  private seen = 0;
  private readonly sockets = new Set<Socket>();
  private readonly clients = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number, text: string, skip: number): Promise<StatementFaultProxy> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new StatementFaultProxy(server, (server.address() as { port: number }).port);
    const statement = Buffer.from(text);
    const failing = Buffer.from('SELECT 1/0'.padEnd(statement.length, ' '));
    server.on('connection', (client) => {
      const upstream = createConnection({ port: targetPort, host: '127.0.0.1' });
      proxy.clients.add(client);
      client.on('close', () => proxy.clients.delete(client));
      for (const socket of [client, upstream]) {
        proxy.sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => proxy.sockets.delete(socket));
      }
      client.on('data', (chunk: Buffer) => {
        const at = chunk.indexOf(statement);
        if (at >= 0 && (proxy.seen += 1) > skip) {
          failing.copy(chunk, at);
          proxy.failed += 1;
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk: Buffer) => client.write(chunk));
      client.on('close', () => upstream.destroy());
      upstream.on('close', () => client.destroy());
    });
    return proxy;
  }

  /** Connections from the app that are open now. */
  get open(): number {
    return this.clients.size;
  }

  /** Closes the listener and every connection. */
  async stop(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
