// Reads the app's responses on one upstream connection: the head (checked by
// response-head.ts), then the body as its framing says (RFC 9112 §6). It hands
// the exchange exactly the bytes of one response, never more; anything it
// does not accept is an error and the caller closes that connection, so a
// confused or hostile app can at worst break its own responses.

import { CHUNKED_ERROR, ChunkedDecoder } from './chunked-decoder.js';
import { Framing, MAX_HEAD, parseResponseHead, type ResponseHead } from './response-head.js';

export type { ResponseHead } from './response-head.js';

/** More interim (1xx) responses before the final one are refused. */
export const MAX_INTERIM = 5;

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
  Chunked,
  UntilClose,
  /** A 101 was read: the rest of the bytes belong to the upgraded protocol. */
  Upgraded,
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
  /** A 101 was read (upgrade requests only); `upgradeRest` holds the bytes after its head. */
  Upgraded,
}

export class ResponseParser {
  private state = State.Idle;
  private sink: ResponseSink | null = null;
  /** For the current request (the HeadContext of its heads). */
  noBody = false;
  upgrade = false;
  /** Pieces of a head that came in several reads; joined once, when it is complete. */
  private headParts: Buffer[] = [];
  private headBytes = 0;
  /** Offset in the head of the last LF seen (-1 for none), and whether the byte before the next piece is a CR. */
  private lastLf = -1;
  private endsWithCr = false;
  private interim = 0;
  private remaining = 0;
  private readonly chunked = new ChunkedDecoder();
  private readonly onChunk = (piece: Buffer) => this.sink!.onBody(piece);
  /** The app allows another request on this connection after this response. */
  keepAlive = true;
  /** The app's Keep-Alive timeout hint in ms, or -1 when it sent none. */
  keepAliveHintMs = -1;
  /** Response bytes have been received for the current request. */
  started = false;
  /** The final response head has been handed to the sink. */
  headDelivered = false;
  /** The whole response has been handed to the sink (onEnd was called). */
  delivered = false;
  /** After Parsed.Upgraded: the bytes that followed the 101 head in the same read. */
  upgradeRest: Buffer | null = null;
  /** After Parsed.Upgraded: the 101 head. */
  upgradeHead: ResponseHead | null = null;

  /** Prepares for the response to a new request; `noBody` for HEAD requests, `upgrade` when a 101 may answer. */
  expect(sink: ResponseSink, noBody: boolean, upgrade = false): void {
    this.sink = sink;
    this.noBody = noBody;
    this.upgrade = upgrade;
    this.state = State.Head;
    this.resetHead();
    this.interim = 0;
    this.started = false;
    this.headDelivered = false;
    this.delivered = false;
    this.keepAlive = true;
    this.keepAliveHintMs = -1;
    this.upgradeRest = null;
    this.upgradeHead = null;
  }

  execute(buf: Buffer): Parsed {
    this.started = true;
    let pos = 0;
    while (pos < buf.length) {
      switch (this.state) {
        case State.Head: {
          const next = this.readHead(buf, pos);
          if (next === HEAD_MORE) return Parsed.More;
          if (next === HEAD_ERROR) return this.fail();
          pos = next;
          if ((this.state as State) === State.Upgraded) {
            this.upgradeRest = pos < buf.length ? buf.subarray(pos) : null;
            return Parsed.Upgraded;
          }
          if ((this.state as State) === State.Done) return pos < buf.length ? this.fail() : Parsed.Done;
          break;
        }
        case State.Length: {
          const n = Math.min(this.remaining, buf.length - pos);
          const piece = pos === 0 && n === buf.length ? buf : buf.subarray(pos, pos + n);
          this.remaining -= n;
          pos += n;
          if (this.remaining === 0) {
            this.end(piece);
            return pos < buf.length ? this.fail() : Parsed.Done;
          }
          this.sink!.onBody(piece);
          break;
        }
        case State.Chunked: {
          pos = this.chunked.execute(buf, pos, this.onChunk);
          if (pos === CHUNKED_ERROR) return this.fail();
          if (this.chunked.done) {
            this.end(null);
            return pos < buf.length ? this.fail() : Parsed.Done;
          }
          break;
        }
        case State.UntilClose:
          this.sink!.onBody(pos === 0 ? buf : buf.subarray(pos));
          return Parsed.More;
        case State.Error:
          return Parsed.Error;
        default:
          // Bytes nobody asked for: the connection's framing is not to be trusted.
          return this.fail();
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
    this.headParts = [];
    return Parsed.Error;
  }

  private end(last: Buffer | null): void {
    this.state = State.Done;
    this.delivered = true;
    this.sink!.onEnd(last);
  }

  private resetHead(): void {
    this.headParts = [];
    this.headBytes = 0;
    this.lastLf = -1;
    this.endsWithCr = false;
  }

  /**
   * Scans buf from pos for the end of the head, checking on the way that every
   * LF follows a CR, so a bare LF fails at once instead of waiting for more.
   * Each byte is scanned once and a split head is joined once.
   */
  private readHead(buf: Buffer, pos: number): number {
    const base = this.headBytes - pos; // head offset of buf[i] is base + i
    let from = pos;
    let end = -1;
    for (;;) {
      const lf = buf.indexOf(10, from);
      if (lf < 0) break;
      if (lf === pos ? !this.endsWithCr : buf[lf - 1] !== 13) return HEAD_ERROR;
      const at = base + lf;
      if (at - this.lastLf === 2) {
        end = lf + 1;
        break;
      }
      this.lastLf = at;
      from = lf + 1;
    }
    if (end < 0) {
      this.headBytes += buf.length - pos;
      if (this.headBytes > MAX_HEAD) return HEAD_ERROR;
      this.headParts.push(pos === 0 ? buf : buf.subarray(pos));
      this.endsWithCr = buf[buf.length - 1] === 13;
      return HEAD_MORE;
    }
    const size = base + end;
    if (size > MAX_HEAD) return HEAD_ERROR;
    // Without its final CRLFCRLF.
    const text =
      this.headParts.length === 0
        ? buf.toString('latin1', pos, end - 4)
        : Buffer.concat([...this.headParts, buf.subarray(pos, end)]).toString('latin1', 0, size - 4);
    this.resetHead();
    const head = parseResponseHead(text, this);
    if (!head) return HEAD_ERROR;
    if (head.status < 200 && head.status !== 101) {
      // Interim responses (100, 103 Early Hints…) are read past: the client
      // gets only the final one.
      if (++this.interim > MAX_INTERIM) return HEAD_ERROR;
      return end;
    }
    this.keepAlive = head.keepAlive;
    this.keepAliveHintMs = head.keepAliveHintMs;
    if (head.status === 101) {
      this.upgradeHead = head;
      this.state = State.Upgraded;
      return end;
    }
    this.headDelivered = true;
    this.sink!.onHead(head);
    switch (head.framing) {
      case Framing.Length:
        this.remaining = head.length;
        this.state = head.length === 0 ? State.Done : State.Length;
        break;
      case Framing.Chunked:
        this.chunked.reset();
        this.state = State.Chunked;
        break;
      case Framing.UntilClose:
        this.state = State.UntilClose;
        break;
      default:
        this.state = State.Done;
    }
    if (this.state === State.Done) this.end(null);
    return end;
  }
}

const HEAD_MORE = -1;
const HEAD_ERROR = -2;
