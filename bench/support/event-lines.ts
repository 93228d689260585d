import { type Readable } from 'node:stream';

/** Counts the module's stderr JSON lines by `event`; other lines are kept (the last few) for errors. */
export class EventCounter {
  readonly counts = new Map<string, number>();
  readonly lines: Record<string, unknown>[] = [];
  readonly other: string[] = [];

  constructor(private readonly keep: (event: string) => boolean = () => false) {}

  /** Number of lines seen with `event`. */
  of(event: string): number {
    return this.counts.get(event) ?? 0;
  }

  /** Feeds one line of text. */
  line(text: string): void {
    const match = /"event":"([a-z_.]+)"/.exec(text);
    if (!match) {
      if (text.trim() !== '') this.other.push(text);
      if (this.other.length > 50) this.other.shift();
      return;
    }
    this.counts.set(match[1], this.of(match[1]) + 1);
    if (this.keep(match[1])) this.lines.push(JSON.parse(text) as Record<string, unknown>);
  }

  /** Reads `stream` line by line until it ends. */
  follow(stream: Readable): void {
    let rest = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const part of parts) this.line(part);
    });
  }
}

/**
 * Takes the process's stderr writes (the module writes each of its lines there in one write,
 * `sinks/stderr-line.ts`) into `counter` until the returned function is called, so the
 * benchmark's own output stays readable and every line of the module is counted.
 *
 * @example
 * const restore = captureStderrLines(counter);
 * try { … } finally { restore(); }
 */
export function captureStderrLines(counter: EventCounter): () => void {
  const original = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
    for (const line of (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8')).split('\n')) {
      if (line !== '') counter.line(line);
    }
    const done = rest.find((arg): arg is (error?: Error | null) => void => typeof arg === 'function');
    if (done) process.nextTick(done);
    return true;
  }) as typeof process.stderr.write;
  return () => {
    process.stderr.write = original;
  };
}
