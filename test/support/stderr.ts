import { type AuditEventLine, EntryParts } from '../../src/audit/sinks';

/**
 * Captures what is written to the process's stderr (where the module writes its lines, one write
 * a line) and parses each line as the JSON object it must be. Non-JSON lines are kept in `other`
 * (the tests assert there are none from the module). An entry written in numbered parts appears
 * in `lines` once, joined: its first part's event with `entry`, as a single line would carry it.
 * `console.error` is silenced too: the module must not use it (Sentry keeps its calls as breadcrumbs).
 */
export class StderrCapture {
  readonly lines: AuditEventLine[] = [];
  readonly other: string[] = [];
  private readonly spy: jest.SpyInstance;
  private readonly consoleSpy: jest.SpyInstance;
  private readonly parts = new EntryParts();

  constructor() {
    this.spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: unknown, ...rest: unknown[]) => {
      const done = rest.find((arg) => typeof arg === 'function') as ((error?: Error | null) => void) | undefined;
      if (done) process.nextTick(done, null);
      const text = typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      for (const line of text.endsWith('\n') ? text.slice(0, -1).split('\n') : [text]) this.take(line);
      return true;
    });
    this.consoleSpy = jest
      .spyOn(console, 'error')
      .mockImplementation((...args: unknown[]) => void this.other.push(args.map(String).join(' ')));
  }

  private take(text: string): void {
    try {
      const parsed = JSON.parse(text) as AuditEventLine;
      if (EntryParts.isPart(parsed)) {
        const joined = this.parts.add(parsed);
        if (joined === 'bad') this.other.push(text);
        else if (joined !== null) this.lines.push(joined as AuditEventLine);
      } else if (parsed && typeof parsed === 'object' && typeof parsed.event === 'string') this.lines.push(parsed);
      else this.other.push(text);
    } catch {
      this.other.push(text);
    }
  }

  of(event: string): AuditEventLine[] {
    return this.lines.filter((line) => line.event === event);
  }

  clear(): void {
    this.lines.length = 0;
    this.other.length = 0;
    // The spy keeps every call's arguments too: let them go with the lines.
    this.spy.mockClear();
    this.consoleSpy.mockClear();
  }

  restore(): void {
    this.spy.mockRestore();
    this.consoleSpy.mockRestore();
  }
}
