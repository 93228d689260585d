import fc from 'fast-check';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureSegment, readSegmentLines } from './segment-reader';
import { nodeSpoolFiles } from './spool-files';

describe('reading a segment in chunks', () => {
  let dir: string;
  beforeAll(async () => (dir = await mkdtemp(join(tmpdir(), 'segment-reader-'))));
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('finds the same lines as splitting the whole text, at any chunk size, from any line on', async () => {
    const path = join(dir, 'segment.ndjson');
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.string({ unit: 'grapheme', maxLength: 40 }), { maxLength: 30 }).map((lines) => lines.map((l) => l.replace(/\n/g, ''))),
        fc.boolean(),
        fc.integer({ min: 1, max: 64 }),
        fc.nat(),
        async (lines, terminated, chunk, skip) => {
          const text = lines.join('\n') + (terminated && lines.length > 0 ? '\n' : '');
          await writeFile(path, text);
          const parts = text.split('\n');
          const last = parts.pop()!;
          const expected = parts
            .map((t, i) => ({ text: t, number: i + 1, torn: false }))
            .concat(last === '' ? [] : [{ text: last, number: parts.length + 1, torn: true }])
            .filter((l) => l.text !== '');

          const read = [];
          for await (const line of readSegmentLines(nodeSpoolFiles, path, undefined, { chunkBytes: chunk })) read.push(line);
          expect(read.map(({ text, number, torn }) => ({ text, number, torn }))).toEqual(expected);
          expect(await measureSegment(nodeSpoolFiles, path, { chunkBytes: chunk })).toEqual({
            bytes: Buffer.byteLength(text),
            lines: expected.length,
          });

          // Starting just past a line, as a retried replay does, reads the rest.
          const from = read[(skip % (read.length + 1)) - 1];
          const rest = [];
          const position = from ? { offset: from.end, line: from.number } : undefined;
          for await (const line of readSegmentLines(nodeSpoolFiles, path, position, { chunkBytes: chunk })) rest.push(line.number);
          expect(rest).toEqual(read.filter((l) => l.number > (from?.number ?? 0)).map((l) => l.number));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('gives up a line longer than any the spool writes without holding it, and reads on after it', async () => {
    const path = join(dir, 'long.ndjson');
    await writeFile(path, `short\n${'x'.repeat(1000)}\nafter\n${'y'.repeat(1000)}`);
    const read = [];
    for await (const line of readSegmentLines(nodeSpoolFiles, path, undefined, { chunkBytes: 64, maxLineBytes: 100 })) read.push(line);
    expect(read.map(({ text, number, torn, tooLong }) => [text, number, torn, tooLong])).toEqual([
      ['short', 1, false, false],
      ['', 2, false, true],
      ['after', 3, false, false],
      ['', 4, true, true],
    ]);
  });
});
