// The newline-JSON framing every socket protocol of the server shares.
import { describe, expect, it } from 'vitest';
import { encodeJsonLine, LineTooLongError, readJsonLines, splitLines } from '../src/wire/json-lines.js';

function collect(maxLine?: number) {
  const lines: string[] = [];
  return { lines, feed: splitLines((l) => lines.push(l), maxLine) };
}

describe('splitLines', () => {
  it('hands on complete lines only, across chunks, and keeps a character split between chunks whole', () => {
    const { lines, feed } = collect();
    const bytes = Buffer.from('one\ntwo é\nthr');
    feed(bytes.subarray(0, 9)); // ends inside 'é'
    feed(bytes.subarray(9));
    expect(lines).toEqual(['one', 'two é']);
    feed('ee\n\n');
    expect(lines).toEqual(['one', 'two é', 'three', '']);
  });

  it('refuses a line past maxLine bytes, finished or not, after the lines before it', () => {
    const a = collect(4);
    expect(() => a.feed('abcd\nabcde\n')).toThrow(LineTooLongError);
    expect(a.lines).toEqual(['abcd']);
    const b = collect(4);
    b.feed('abc');
    expect(() => b.feed('de')).toThrow('a line longer than 4 bytes');
    // Bytes, not characters: three characters of two bytes each.
    const c = collect(4);
    let caught: unknown;
    try {
      c.feed('ééé');
    } catch (err) {
      caught = err;
    }
    expect((caught as LineTooLongError).code).toBe('ELINETOOLONG');
  });
});

describe('readJsonLines and encodeJsonLine', () => {
  it('round-trips messages, even with newlines in strings, and skips blank lines', () => {
    const got: unknown[] = [];
    const feed = readJsonLines((m) => got.push(m));
    const msgs = [{ out: 'a\nb\n' }, { exit: 0 }];
    feed(`${encodeJsonLine(msgs[0])}  \n${encodeJsonLine(msgs[1])}`);
    expect(got).toEqual(msgs);
  });

  it('throws on a line that is not JSON', () => {
    expect(() => readJsonLines(() => {})('{nope\n')).toThrow(SyntaxError);
  });
});
