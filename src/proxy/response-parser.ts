// A small HTTP/1.x response parser for the proxy's own upstream connections.
// It reads only what the proxy needs: status, headers for the client (with
// hop-by-hop ones dropped while parsing), and the body's framing. Anything it
// does not understand is an error, and the caller closes that connection, so
// a confused app can at worst break its own responses.

const CRLFCRLF = Buffer.from('\r\n\r\n');
/** Larger response heads are refused (Node's own limit is 16 KB). */
const MAX_HEAD = 64 * 1024;

export interface ResponseHead {
  status: number;
  reason: string;
  /** Name/value pairs for the client; Connection, Keep-Alive, Transfer-Encoding and co. removed. */
  headers: string[];
}

export interface ResponseSink {
  onHead(head: ResponseHead): void;
  onBody(chunk: Buffer): void;
  /** The message is complete; `last` is its final body piece when it came with the end. */
  onEnd(last: Buffer | null): void;
}

const enum State {
  Idle,
  Head,
  Length,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerLineStart,
  Trailer,
  TrailerLf,
  FinalLf,
  UntilClose,
  Done,
  Error,
}

export const enum Parsed {
  /** Needs more bytes. */
  More,
  /** One full response was delivered. */
  Done,
  /** Malformed, or bytes after the response: the connection must not be reused. */
  Error,
}

export class ResponseParser {
  private state = State.Idle;
  private sink: ResponseSink | null = null;
  private noBody = false;
  private head: Buffer | null = null;
  private remaining = 0;
  private chunkDigits = 0;
  /** The app asked for (or implied) a closed connection after this response. */
  keepAlive = true;
  /** The app's Keep-Alive timeout hint in ms, or -1 when it sent none. */
  keepAliveHintMs = -1;
  /** Response bytes have been received for the current request. */
  started = false;
  /** The whole response has been handed to the sink (onEnd was called). */
  delivered = false;

  /** Prepares for the response to a new request; `noBody` for HEAD requests. */
  expect(sink: ResponseSink, noBody: boolean): void {
    this.sink = sink;
    this.noBody = noBody;
    this.state = State.Head;
    this.head = null;
    this.started = false;
    this.delivered = false;
    this.keepAlive = true;
    this.keepAliveHintMs = -1;
  }

  get idle(): boolean {
    return this.state === State.Idle || this.state === State.Done;
  }

  execute(buf: Buffer): Parsed {
    this.started = true;
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case State.Head: {
          const next = this.readHead(buf, pos);
          if (next < 0) return next === -1 ? Parsed.More : this.fail();
          pos = next;
          if ((this.state as State) === State.Done) return pos < buf.length ? this.fail() : Parsed.Done;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - pos);
          const piece = pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n);
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) return this.complete(piece, pos < buf.length);
          this.sink!.onBody(piece);
          break;
        }
        case State.UntilClose:
          this.sink!.onBody(pos === 0 ? buf : buf.subarray(pos));
          return Parsed.More;
        case State.ChunkData: {
          const n = Math.min(this.remaining, buf.length - pos);
          this.sink!.onBody(buf.subarray(pos, pos + n));
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) this.state = State.ChunkDataCr;
          break;
        }
        case State.Done:
        case State.Idle:
          // Bytes nobody asked for: the connection's framing is not to be trusted.
          return this.fail();
        case State.Error:
          return Parsed.Error;
        default: {
          const r = this.chunkControl(buf[pos++]);
          if (r !== Parsed.More) return r === Parsed.Done && pos < buf.length ? this.fail() : r;
        }
      }
    }
    return Parsed.More;
  }

  /** The app closed the connection: completes a close-delimited body, else it is an error. */
  finish(): Parsed {
    if (this.state === State.UntilClose) {
      this.end(null);
      return Parsed.Done;
    }
    if (this.state === State.Idle || this.state === State.Done) return Parsed.Done;
    return this.fail();
  }

  private fail(): Parsed {
    this.state = State.Error;
    return Parsed.Error;
  }

  private complete(last: Buffer | null, extra: boolean): Parsed {
    this.end(last);
    return extra ? this.fail() : Parsed.Done;
  }

  private end(last: Buffer | null): void {
    this.state = State.Done;
    this.delivered = true;
    this.sink!.onEnd(last);
  }

  /** Returns the position after the head, -1 for more bytes, -2 for an error. */
  private readHead(buf: Buffer, pos: number): number {
    let data = pos === 0 ? buf : buf.subarray(pos);
    let from = 0;
    if (this.head) {
      from = Math.max(0, this.head.length - 3);
      data = Buffer.concat([this.head, data]);
    }
    const end = data.indexOf(CRLFCRLF, from);
    if (end < 0) {
      if (data.length > MAX_HEAD) return -2;
      this.head = data === buf ? Buffer.from(data) : data;
      return -1;
    }
    const consumedBefore = this.head ? this.head.length : 0;
    this.head = null;
    if (end > MAX_HEAD || !this.parseHead(data.toString('latin1', 0, end))) return -2;
    const after = end + 4 - consumedBefore;
    // A body-less response completes with its head.
    if (this.state === State.Done) this.end(null);
    return pos + after;
  }

  private parseHead(text: string): boolean {
    // Status line: HTTP/1.x SSS reason
    let eol = text.indexOf('\r\n');
    if (eol < 0) eol = text.length;
    if (eol < 12 || !text.startsWith('HTTP/1.') || (eol > 12 && text.charCodeAt(12) !== 32)) return false;
    const minor = text.charCodeAt(7) - 48;
    const status = parseStatus(text);
    if (status < 0 || (minor !== 0 && minor !== 1)) return false;
    const reason = eol > 13 ? text.slice(13, eol) : '';

    const headers: string[] = [];
    let length = -1;
    let chunked = false;
    let te = false;
    let connection: string | null = null;
    let pos = eol + 2;
    while (pos < text.length) {
      let next = text.indexOf('\r\n', pos);
      if (next < 0) next = text.length;
      const colon = text.indexOf(':', pos);
      if (colon <= pos || colon > next) return false;
      const name = text.slice(pos, colon);
      const value = trimOws(text, colon + 1, next);
      pos = next + 2;
      const n = name.length;
      if (n === 7 || n === 10 || n === 14 || n === 16 || n === 17) {
        const lower = name.toLowerCase();
        if (lower === 'content-length') {
          const v = parseDigits(value);
          if (v < 0 || (length >= 0 && v !== length)) return false;
          length = v;
        } else if (lower === 'transfer-encoding') {
          te = true;
          chunked = lastCodingIsChunked(value);
          continue;
        } else if (lower === 'connection') {
          connection = connection === null ? value : `${connection},${value}`;
          continue;
        } else if (lower === 'keep-alive') {
          const at = value.indexOf('timeout=');
          if (at >= 0) this.keepAliveHintMs = parseInt(value.slice(at + 8), 10) * 1000 || 0;
          continue;
        } else if (lower === 'proxy-connection' || lower === 'trailer' || lower === 'upgrade') {
          continue;
        }
      }
      headers.push(name, value);
    }

    if (status < 200) {
      // 1xx: informational, the real response follows (101 is never asked for here).
      if (status === 101) return false;
      this.state = State.Head;
      return true;
    }

    if (connection !== null) {
      const tokens = connection.toLowerCase();
      if (tokens.includes('close')) this.keepAlive = false;
      else if (minor === 0 && !tokens.includes('keep-alive')) this.keepAlive = false;
      if (tokens !== 'keep-alive' && tokens !== 'close') dropNamed(headers, tokens);
    } else if (minor === 0) {
      this.keepAlive = false;
    }

    this.sink!.onHead({ status, reason, headers });

    if (this.noBody || status === 204 || status === 304) {
      this.state = State.Done;
    } else if (te) {
      // Transfer-Encoding wins over Content-Length, and such a message must not
      // share its connection with the next (RFC 9112 §6.3).
      if (length >= 0) this.keepAlive = false;
      if (chunked) {
        this.state = State.ChunkSize;
        this.remaining = 0;
        this.chunkDigits = 0;
      } else {
        this.state = State.UntilClose;
        this.keepAlive = false;
      }
    } else if (length >= 0) {
      this.remaining = length;
      this.state = length === 0 ? State.Done : State.Length;
    } else {
      this.state = State.UntilClose;
      this.keepAlive = false;
    }
    return true;
  }

  /** One byte of chunked framing outside chunk data. */
  private chunkControl(c: number): Parsed {
    switch (this.state) {
      case State.ChunkSize: {
        const d = hexDigit(c);
        if (d >= 0) {
          if (++this.chunkDigits > 12) return this.fail();
          this.remaining = this.remaining * 16 + d;
          return Parsed.More;
        }
        if (this.chunkDigits === 0) return this.fail();
        if (c === 13) this.state = State.ChunkSizeLf;
        else if (c === 59 || c === 32 || c === 9) this.state = State.ChunkExt;
        else return this.fail();
        return Parsed.More;
      }
      case State.ChunkExt:
        if (c === 13) this.state = State.ChunkSizeLf;
        else if (c === 10) return this.fail();
        return Parsed.More;
      case State.ChunkSizeLf:
        if (c !== 10) return this.fail();
        this.chunkDigits = 0;
        this.state = this.remaining === 0 ? State.TrailerLineStart : State.ChunkData;
        return Parsed.More;
      case State.ChunkDataCr:
        if (c !== 13) return this.fail();
        this.state = State.ChunkDataLf;
        return Parsed.More;
      case State.ChunkDataLf:
        if (c !== 10) return this.fail();
        this.state = State.ChunkSize;
        return Parsed.More;
      case State.TrailerLineStart:
        // Trailers are read past, not forwarded.
        if (c === 13) this.state = State.FinalLf;
        else this.state = State.Trailer;
        return Parsed.More;
      case State.Trailer:
        if (c === 13) this.state = State.TrailerLf;
        return Parsed.More;
      case State.TrailerLf:
        if (c !== 10) return this.fail();
        this.state = State.TrailerLineStart;
        return Parsed.More;
      case State.FinalLf:
        if (c !== 10) return this.fail();
        this.end(null);
        return Parsed.Done;
      default:
        return this.fail();
    }
  }
}

function parseStatus(text: string): number {
  const a = text.charCodeAt(9) - 48;
  const b = text.charCodeAt(10) - 48;
  const c = text.charCodeAt(11) - 48;
  if (text.charCodeAt(8) !== 32 || a < 1 || a > 5 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
  return a * 100 + b * 10 + c;
}

/** A Content-Length value, or -1 if it is not 1–15 decimal digits. */
function parseDigits(value: string): number {
  if (value.length === 0 || value.length > 15) return -1;
  let v = 0;
  for (let i = 0; i < value.length; i++) {
    const d = value.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

function lastCodingIsChunked(value: string): boolean {
  const v = value.toLowerCase();
  if (!v.endsWith('chunked')) return false;
  const before = v.length - 8;
  return before < 0 || v.charCodeAt(before) === 44 /* , */ || v.charCodeAt(before) === 32 || v.charCodeAt(before) === 9;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function trimOws(text: string, start: number, end: number): string {
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return text.slice(start, end);
}

/** Removes, in place, the headers the app listed in Connection (RFC 9110 §7.6.1). */
function dropNamed(headers: string[], tokens: string): void {
  const named = new Set(tokens.split(',').map((t) => t.trim()).filter(Boolean));
  // Framing headers are the proxy's concern and never dropped by name.
  named.delete('content-length');
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if (named.has(headers[r].toLowerCase())) continue;
    headers[w++] = headers[r];
    headers[w++] = headers[r + 1];
  }
  headers.length = w;
}
