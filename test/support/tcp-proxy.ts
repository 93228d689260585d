import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy between the app and PostgreSQL that can turn into a silent network partition: in
 * `blackhole` mode it keeps every connection open, reads what the app sends and throws it away,
 * and answers nothing, neither data nor a close (packets dropped, not refused). Connections made
 * or silenced during the partition stay dead after it, as a server that lost their state would
 * leave them; new ones are forwarded again once it ends.
 *
 * @example
 * const proxy = await TcpProxy.start(db.port);
 * proxy.blackhole(); // … the app's queries go unanswered …
 * proxy.forward();
 * await proxy.stop();
 */
export class TcpProxy {
  /** Bytes the proxy swallowed in `blackhole` mode. */
  swallowed = 0;
  private mode: 'forward' | 'blackhole' = 'forward';
  private trigger: Buffer | undefined;
  private readonly clients = new Map<Socket, Socket | undefined>();
  private readonly silenced = new WeakSet<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly target: { port: number; host: string },
    readonly port: number,
  ) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    // Half-open sockets: a FIN from the app is not answered by one from the proxy.
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new TcpProxy(server, { port: targetPort, host: targetHost }, (server.address() as { port: number }).port);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** Connections from the app that are open now (half-open ones included). */
  get open(): number {
    return this.clients.size;
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const client of this.clients.keys()) this.silence(client);
  }

  forward(): void {
    this.mode = 'forward';
  }

  /** Turns into a black hole (as {@link blackhole}) when the app sends `text` (a statement's SQL), which is dropped: a server that stops answering mid-command. */
  blackholeWhenSent(text: string): void {
    this.trigger = Buffer.from(text);
  }

  /** Closes the listener and every connection. */
  async stop(): Promise<void> {
    for (const [client, upstream] of this.clients) {
      client.destroy();
      upstream?.destroy();
    }
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket): void {
    client.on('error', () => undefined);
    client.on('close', () => {
      this.clients.get(client)?.destroy();
      this.clients.delete(client);
    });
    if (this.mode === 'blackhole') {
      this.clients.set(client, undefined);
      this.silence(client);
      return;
    }
    const upstream = createConnection(this.target);
    this.clients.set(client, upstream);
    upstream.on('error', () => undefined);
    const live = () => !this.silenced.has(client);
    client.on('data', (chunk: Buffer) => {
      if (this.trigger && chunk.includes(this.trigger)) {
        this.trigger = undefined;
        this.blackhole();
        this.swallowed += chunk.length;
      }
      return live() && upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => live() && client.write(chunk));
    client.on('end', () => live() && upstream.end());
    upstream.on('end', () => live() && client.end());
    upstream.on('close', () => live() && client.destroy());
  }

  /** From now on, what the app sends is read and dropped; nothing comes back and nothing is closed. */
  private silence(client: Socket): void {
    if (this.silenced.has(client)) return;
    this.silenced.add(client);
    client.on('data', (chunk: Buffer) => (this.swallowed += chunk.length));
  }
}
