import type { FileHandle } from 'node:fs/promises';

const BLOCK_BYTES = 64 * 1024;
const NEWLINE = 0x0a;

/**
 * The lines of an open file, last first, read from its end in blocks, so a
 * caller that stops early reads only what it needed. Like text.split('\n'):
 * the piece after a final newline is an empty line. Splitting the bytes at '\n'
 * and decoding each line gives what decoding the whole file would, since the
 * byte 0x0a never occurs inside a multi-byte UTF-8 character.
 * The file may grow meanwhile (only bytes up to its size at the start are read),
 * never shrink: log files are only appended to and renamed.
 */
export async function* linesBackwards(file: FileHandle, blockBytes = BLOCK_BYTES): AsyncGenerator<string> {
  let pos = (await file.stat()).size;
  // The end of the line that began before the block just read.
  let carry = Buffer.alloc(0);
  while (pos > 0) {
    const len = Math.min(blockBytes, pos);
    pos -= len;
    const block = Buffer.allocUnsafe(len);
    const { bytesRead } = await file.read(block, 0, len, pos);
    if (bytesRead !== len) throw new Error(`the file shrank while it was read (${bytesRead} of ${len} bytes at ${pos})`);
    const buf = carry.length > 0 ? Buffer.concat([block, carry]) : block;
    let end = buf.length;
    let nl: number;
    // end > 0 first: lastIndexOf takes a negative offset as counted from the end.
    while (end > 0 && (nl = buf.lastIndexOf(NEWLINE, end - 1)) !== -1) {
      yield buf.toString('utf8', nl + 1, end);
      end = nl;
    }
    carry = buf.subarray(0, end);
  }
  yield carry.toString('utf8');
}
