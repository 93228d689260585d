import { type AuditEventLine, EntryParts } from '../../src/audit/sinks';

/**
 * Captures what the module writes with `console.error` and parses each line as the JSON object it
 * must be. Non-JSON lines are kept in `other` (the tests assert there are none from the module).
 * An entry written in numbered parts appears in `lines` once, joined: its first part's event with
 * `entry`, as a single line would carry it.
 */
export class StderrCapture {
  readonly lines: AuditEventLine[] = [];
  readonly other: string[] = [];
  private readonly spy: jest.SpyInstance;
  private readonly parts = new EntryParts();

  constructor() {
    this.spy = jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => {
      const text = args.map(String).join(' ');
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
    });
  }

  of(event: string): AuditEventLine[] {
    return this.lines.filter((line) => line.event === event);
  }

  clear(): void {
    this.lines.length = 0;
    this.other.length = 0;
    // The spy keeps every call's arguments too: let them go with the lines.
    this.spy.mockClear();
  }

  restore(): void {
    this.spy.mockRestore();
  }
}
