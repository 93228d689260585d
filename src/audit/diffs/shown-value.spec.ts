import { createHash } from 'node:crypto';
import { binarySummary, shownValue } from './shown-value';

const none = new Set<string>();

describe('shownValue', () => {
  it('takes excluded paths out of a value at any depth, through arrays, without touching the value', () => {
    const settings = { theme: 'dark', layout: { grid: true, side: 'left' }, list: [{ secretHint: 1, kind: 'a' }] };
    const exclude = new Set(['settings.theme', 'settings.layout.grid', 'settings.list.secretHint', 'other.theme']);
    expect(shownValue(settings, 'settings', exclude)).toEqual({ layout: { side: 'left' }, list: [{ kind: 'a' }] });
    expect(settings.theme).toBe('dark');
    expect(shownValue(settings, 'other', new Set(['settings.theme']))).toBe(settings);
    const cycle: unknown[] = [];
    cycle.push(cycle);
    expect(() => shownValue(cycle, 'settings', exclude)).not.toThrow();
  });

  it('prunes a class instance (a validated DTO) by its own enumerable keys, as JSON writes it', () => {
    class SettingsDto {
      theme?: string;
      color?: string;
    }
    const dto = Object.assign(new SettingsDto(), { theme: 'secret', color: 'blue' });
    const exclude = new Set(['settings.theme', 'panels.theme']);
    expect(JSON.stringify(shownValue(dto, 'settings', exclude))).toBe('{"color":"blue"}');
    expect(JSON.stringify(shownValue([dto], 'panels', exclude))).toBe('[{"color":"blue"}]');
    expect(JSON.stringify(shownValue({ inner: dto }, 'settings', new Set(['settings.inner.theme'])))).toBe('{"inner":{"color":"blue"}}');
    expect(dto.theme).toBe('secret');
  });

  it('prunes the entries of a Map and the values of a Set, as the JSON-safe conversion shows them', () => {
    const exclude = new Set(['settings.theme']);
    expect(
      shownValue(
        new Map([
          ['theme', 'secret'],
          ['color', 'red'],
        ]),
        'settings',
        exclude,
      ),
    ).toEqual({ color: 'red' });
    expect(shownValue(new Set([{ theme: 'secret', color: 'red' }]), 'settings', exclude)).toEqual([{ color: 'red' }]);
  });

  it('shows a value with toJSON() as what toJSON() returns, at any depth, and prunes that', () => {
    class Money {
      constructor(readonly cents: number) {}
      toJSON(): string {
        return `${(this.cents / 100).toFixed(2)} EUR`;
      }
    }
    class Wrapped {
      toJSON(): unknown {
        return { theme: 'secret', total: new Money(5) };
      }
    }
    expect(shownValue(new Money(1250), 'total', none)).toBe('12.50 EUR');
    expect(shownValue({ lines: [new Money(100)] }, 'doc', none)).toEqual({ lines: ['1.00 EUR'] });
    expect(shownValue(new Wrapped(), 'settings', new Set(['settings.theme']))).toEqual({ total: '0.05 EUR' });
  });

  it('keeps dates and errors for the JSON-safe conversion, and a value with nothing to change as it is', () => {
    const date = new Date(5);
    const plain = { a: [1, { b: 'c' }] };
    expect(shownValue(date, 'at', none)).toBe(date);
    expect(shownValue(plain, 'doc', none)).toBe(plain);
  });

  it('shows binary data as its length and a short SHA-256, never its bytes', () => {
    const sha = (hex: string) => createHash('sha256').update(Buffer.from(hex, 'hex')).digest('hex').slice(0, 16);
    expect(shownValue(Buffer.from('cafebabe', 'hex'), 'content', none)).toBe(`[Buffer 4 bytes, sha256 ${sha('cafebabe')}]`);
    expect(shownValue(Buffer.from('deadbeef', 'hex'), 'content', none)).not.toBe(
      shownValue(Buffer.from('cafebabe', 'hex'), 'content', none),
    );
    expect(shownValue({ file: new Uint8Array([0xca, 0xfe]) }, 'doc', none)).toEqual({
      file: `[Uint8Array 2 bytes, sha256 ${sha('cafe')}]`,
    });
    const slice = Buffer.from('00cafe00', 'hex').subarray(1, 3);
    expect(binarySummary(slice)).toBe(`[Buffer 2 bytes, sha256 ${sha('cafe')}]`);
    expect(binarySummary(new Uint8Array([0xca, 0xfe]).buffer)).toBe(`[ArrayBuffer 2 bytes, sha256 ${sha('cafe')}]`);
  });

  it('shows a value that cannot be read as unreadable, and an SQL expression as unknown', () => {
    const hostile = {
      get theme(): string {
        throw new Error('no');
      },
    };
    expect(shownValue({ inner: hostile }, 'doc', none)).toEqual({ inner: { theme: '[Unreadable]' } });
    expect(
      shownValue(
        {
          toJSON() {
            throw new Error('no');
          },
        },
        'doc',
        none,
      ),
    ).toBe('[Unreadable]');
    expect(shownValue(() => 'NOW()', 'at', none)).toBe('unknown');
    expect(shownValue(null, 'at', none)).toBeNull();
  });

  it('reads a graph that shares its nodes at most so far', () => {
    let shared: unknown = 'leaf';
    for (let i = 0; i < 30; i++) shared = [shared, shared];
    const shown = JSON.stringify(shownValue({ shared, extra: new Uint8Array(1) }, 'doc', none));
    expect(shown).toContain('[Truncated]');
  });
});
