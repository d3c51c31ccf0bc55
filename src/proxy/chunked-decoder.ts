// A strict decoder for a chunked response body (RFC 9112 §7.1). Chunk data is
// handed on as it arrives; extensions and trailers are checked, then dropped
// (the client's body is re-chunked by Node). Every deviation is an error: the
// caller closes the app's connection.

import { MAX_HEAD } from './response-head.js';

const enum State {
  Size,
  /** Whitespace after the size: only a ';' may follow. */
  SizeWs,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  FinalLf,
  Done,
}

/** More than this many hex digits is refused (2^48 bytes is more than any body). */
const MAX_SIZE_DIGITS = 12;

export const CHUNKED_ERROR = -1;

export class ChunkedDecoder {
  private state = State.Size;
  private remaining = 0;
  private digits = 0;
  /** Bytes of the current size line or of all trailers, bounded like a head. */
  private lineBytes = 0;

  reset(): void {
    this.state = State.Size;
    this.remaining = 0;
    this.digits = 0;
    this.lineBytes = 0;
  }

  get done(): boolean {
    return this.state === State.Done;
  }

  /**
   * Decodes buf from pos, passing chunk data to onData. Returns the position
   * after the last byte used: buf.length for more, less once the body is done
   * (check `done`), or CHUNKED_ERROR.
   */
  execute(buf: Buffer, pos: number, onData: (piece: Buffer) => void): number {
    while (pos < buf.length) {
      if (this.state === State.Data) {
        const n = Math.min(this.remaining, buf.length - pos);
        onData(buf.subarray(pos, pos + n));
        this.remaining -= n;
        pos += n;
        if (this.remaining === 0) this.state = State.DataCr;
        continue;
      }
      if (!this.control(buf[pos++]!)) return CHUNKED_ERROR;
      if (this.state === State.Done) return pos;
    }
    return pos;
  }

  /** One byte of framing outside chunk data; false when it is not allowed here. */
  private control(c: number): boolean {
    switch (this.state) {
      case State.Size: {
        const d = hexDigit(c);
        if (d >= 0) {
          if (++this.digits > MAX_SIZE_DIGITS) return false;
          this.remaining = this.remaining * 16 + d;
          return true;
        }
        if (this.digits === 0) return false;
        this.lineBytes = this.digits;
        if (c === 13) this.state = State.SizeLf;
        else if (c === 59 /* ; */) this.state = State.Ext;
        else if (c === 32 || c === 9) this.state = State.SizeWs;
        else return false;
        return true;
      }
      case State.SizeWs:
        if (c === 59) this.state = State.Ext;
        else if (c !== 32 && c !== 9) return false;
        return this.countLine();
      case State.Ext:
        // Extensions are dropped; they may hold visible text, SP, HTAB and obs-text only.
        if (c === 13) this.state = State.SizeLf;
        else if (!isFieldText(c)) return false;
        return this.countLine();
      case State.SizeLf:
        if (c !== 10) return false;
        this.digits = 0;
        this.lineBytes = 0;
        this.state = this.remaining === 0 ? State.TrailerStart : State.Data;
        return true;
      case State.DataCr:
        if (c !== 13) return false;
        this.state = State.DataLf;
        return true;
      case State.DataLf:
        if (c !== 10) return false;
        this.state = State.Size;
        return true;
      case State.TrailerStart:
        // Trailer fields are read past, not forwarded; obs-fold is refused as in a head.
        if (c === 13) this.state = State.FinalLf;
        else if (c === 32 || c === 9 || !isFieldText(c)) return false;
        else this.state = State.Trailer;
        return this.countLine();
      case State.Trailer:
        if (c === 13) this.state = State.TrailerLf;
        else if (!isFieldText(c)) return false;
        return this.countLine();
      case State.TrailerLf:
        if (c !== 10) return false;
        this.state = State.TrailerStart;
        return this.countLine();
      case State.FinalLf:
        if (c !== 10) return false;
        this.state = State.Done;
        return true;
      default:
        return false;
    }
  }

  private countLine(): boolean {
    return ++this.lineBytes <= MAX_HEAD;
  }
}

function isFieldText(c: number): boolean {
  return c === 9 || (c >= 32 && c !== 127);
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
