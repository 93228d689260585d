import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A silent partition as the server meets it: packets dropped both ways, so when the app gives up
 * a connection (its socket destroyed) the server never hears of it, and the session lives on until
 * the server's TCP keepalive gives up (Linux defaults: over two hours). Connections made after the
 * partition ends are forwarded. `TcpProxy` closes the server side as soon as the app closes its
 * side, which no real partition does.
 *
 * @example
 * const proxy = await PartitionProxy.start(db.port);
 * proxy.partition(); // … the sessions open now are cut off, and live on in the server …
 * proxy.heal();
 * await proxy.stop(); // ends those sessions too, and every connection it accepted
 */
export class PartitionProxy {
  private readonly pairs = new Map<Socket, Socket>();
  private readonly orphans = new Set<Socket>();
  /** Connections accepted while partitioned: never forwarded, ended by {@link stop}. */
  private readonly dropped = new Set<Socket>();
  private dropping = false;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<PartitionProxy> {
    const server = createServer({ allowHalfOpen: true });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const proxy = new PartitionProxy(server, (server.address() as { port: number }).port);
    server.on('connection', (client) => proxy.accept(client, target));
    return proxy;
  }

  /** Every connection open now goes silent for good; the server side of each stays open. */
  partition(): void {
    this.dropping = true;
    for (const [client, upstream] of this.pairs) {
      this.orphans.add(upstream);
      client.removeAllListeners('data');
      upstream.removeAllListeners('data');
      client.on('data', () => undefined);
      upstream.on('data', () => undefined);
    }
  }

  /** New connections are forwarded again; the silenced ones stay as they are. */
  heal(): void {
    this.dropping = false;
  }

  /** Ends every connection it accepted (those it dropped during the partition too) and the sessions it cut off, then closes. */
  async stop(): Promise<void> {
    for (const client of this.dropped) client.destroy();
    for (const [client, upstream] of this.pairs) {
      client.destroy();
      upstream.destroy();
    }
    for (const upstream of this.orphans) upstream.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(client: Socket, target: number): void {
    client.on('error', () => undefined);
    if (this.dropping) {
      this.dropped.add(client);
      client.on('data', () => undefined);
      client.on('close', () => this.dropped.delete(client));
      return;
    }
    const upstream = createConnection({ port: target, host: '127.0.0.1' });
    upstream.on('error', () => undefined);
    this.pairs.set(client, upstream);
    client.on('data', (chunk: Buffer) => upstream.write(chunk));
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('close', () => {
      this.pairs.delete(client);
      // The app's close reaches the server only while the network carries it.
      if (!this.orphans.has(upstream)) upstream.destroy();
    });
    upstream.on('close', () => !this.orphans.has(upstream) && client.destroy());
  }
}
