import { createServer, type IncomingMessage, type Server } from 'node:http';
import { gunzipSync } from 'node:zlib';

/** One event as the Sentry SDK sent it in an envelope. */
export interface SentryEvent {
  level?: string;
  message?: string;
  fingerprint?: string[];
  tags?: Record<string, string>;
  contexts?: Record<string, Record<string, unknown>>;
  exception?: { values?: { type?: string; value?: string }[] };
  user?: { id?: string };
  [key: string]: unknown;
}

/**
 * A local stand-in for Sentry's ingest endpoint: the real SDK, given `dsn`, POSTs its envelopes
 * here, and the test reads the events (and the raw bytes) it received.
 */
export class SentryIngest {
  readonly events: SentryEvent[] = [];
  readonly rawBodies: string[] = [];

  private constructor(private readonly server: Server) {}

  static async start(): Promise<SentryIngest> {
    const server = createServer();
    const ingest = new SentryIngest(server);
    server.on('request', (request, response) => {
      void readBody(request).then((body) => {
        ingest.receive(body);
        response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return ingest;
  }

  get dsn(): string {
    const { port } = this.server.address() as { port: number };
    return `http://publickey@127.0.0.1:${port}/1`;
  }

  stop(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private receive(body: string): void {
    this.rawBodies.push(body);
    const lines = body.split('\n').filter((line) => line.trim() !== '');
    // Envelope: header line, then pairs of item header and payload.
    for (let i = 1; i + 1 < lines.length; i += 2) {
      const item = JSON.parse(lines[i]) as { type?: string };
      if (item.type === 'event') this.events.push(JSON.parse(lines[i + 1]) as SentryEvent);
    }
  }
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks);
  return (request.headers['content-encoding'] === 'gzip' ? gunzipSync(body) : body).toString('utf8');
}
