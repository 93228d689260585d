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
 * Replaces `console.error` (the module's stderr sink) with `counter` until the returned function
 * is called, so the benchmark's own output stays readable.
 *
 * @example
 * const restore = captureConsoleError(counter);
 * try { … } finally { restore(); }
 */
export function captureConsoleError(counter: EventCounter): () => void {
  const original = console.error;
  console.error = (...args: unknown[]) => counter.line(args.map(String).join(' '));
  return () => {
    console.error = original;
  };
}
