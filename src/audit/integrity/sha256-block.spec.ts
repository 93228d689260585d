import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { manifestEntry } from './seal';
import { compressBlock, hash65, hashAfterBlock, initialState, readWords, wordsToBuffer } from './sha256-block';

describe('compressBlock', () => {
  it('hashes a padded one-block message as node:crypto does (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 55 }), (message) => {
        const block = Buffer.alloc(64);
        block.set(message);
        block[message.length] = 0x80;
        block.writeUInt32BE(message.length * 8, 60);
        const words = new Int32Array(16);
        for (let i = 0; i < 16; i++) words[i] = block.readInt32BE(i * 4);
        const state = initialState();
        compressBlock(state, words);
        expect(wordsToBuffer(state).toString('hex')).toBe(createHash('sha256').update(message).digest('hex'));
      }),
    );
  });
});

describe('hashAfterBlock', () => {
  it('hashes one 64-byte block then 32 bytes as node:crypto does (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 64, maxLength: 64 }), fc.uint8Array({ minLength: 32, maxLength: 32 }), (first, tail) => {
        const state = initialState();
        const words = new Int32Array(16);
        for (let i = 0; i < 16; i++) words[i] = Buffer.from(first).readInt32BE(i * 4);
        compressBlock(state, words);
        const tailWords = new Int32Array(8);
        readWords(Buffer.from(tail), tailWords);
        const out = new Int32Array(8);
        hashAfterBlock(state, tailWords, out);
        const expected = createHash('sha256')
          .update(Buffer.concat([first, tail]))
          .digest('hex');
        expect(wordsToBuffer(out).toString('hex')).toBe(expected);
        // The prefix state is left as it was: one prefix serves many hashes.
        hashAfterBlock(state, tailWords, out);
        expect(wordsToBuffer(out).toString('hex')).toBe(expected);
      }),
    );
  });
});

describe('readWords', () => {
  it('reads 32 bytes as the 8 big-endian words wordsToBuffer writes back (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        const words = new Int32Array(8);
        readWords(Buffer.from(bytes), words);
        expect(words[0]).toBe(Buffer.from(bytes).readInt32BE(0));
        expect(wordsToBuffer(words)).toEqual(Buffer.from(bytes));
      }),
    );
  });
});

describe('hash65', () => {
  it('hashes 65 bytes as node:crypto does (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 65, maxLength: 65 }), (bytes) => {
        const node = Buffer.from(bytes);
        expect(hash65(node).toString('hex')).toBe(createHash('sha256').update(node).digest('hex'));
      }),
    );
  });
});

describe('manifestEntry', () => {
  const leaf = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');

  it("is the id's 16 bytes and the leaf's first 8", () => {
    expect(manifestEntry('0190c9b8-1a2b-7c3d-8e4f-a0b1c2d3e4f5', leaf).toString('hex')).toBe(
      '0190c9b81a2b7c3d8e4fa0b1c2d3e4f50011223344556677',
    );
  });

  it('writes an id that is not a UUID as far as it is hex, as it always did', () => {
    expect(manifestEntry('abcd-zz', leaf).toString('hex')).toBe('abcd0011223344556677');
  });
});
