// Parses and checks one response head from an app (RFC 9112 §4-§6) as an
// intermediary must: anything malformed is refused (null), never repaired, so
// no app byte reaches the client's connection unchecked. The caller has
// already made sure every LF in the head follows a CR and that the head is
// at most MAX_HEAD bytes.

/** Larger response heads are refused (Node's own client limit). */
export const MAX_HEAD = 16 * 1024;

/** How the body that follows a head is delimited. */
export const enum Framing {
  /** No body: HEAD request, 1xx, 204, 304. */
  None,
  Length,
  Chunked,
  /** Read until the app closes; the connection is never reused. */
  UntilClose,
}

export interface ResponseHead {
  status: number;
  /** Only HTAB, SP, visible ASCII and obs-text; '' for the standard phrase. */
  reason: string;
  /** Name/value pairs for the client: hop-by-hop ones removed, one Content-Length at most. */
  headers: string[];
  framing: Framing;
  /** Body bytes when framing is Length. */
  length: number;
  /** The app allows another request on this connection afterwards. */
  keepAlive: boolean;
  /** The app's Keep-Alive timeout hint in ms, or -1 when it sent none. */
  keepAliveHintMs: number;
}

export interface HeadContext {
  /** The request was HEAD: the response has no body whatever its headers say. */
  noBody: boolean;
  /** The request asked for an upgrade: a 101 is acceptable and keeps Connection and Upgrade. */
  upgrade: boolean;
}

/** tchar (RFC 9110 §5.6.2): field names and transfer-coding names. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Anything but HTAB, SP, VCHAR and obs-text: NUL, bare CR, DEL and other controls. */
const NOT_FIELD_TEXT = /[\x00-\x08\x0a-\x1f\x7f]/;

/** `text` is the head without its final CRLFCRLF. Returns null when the head is not acceptable. */
export function parseResponseHead(text: string, ctx: HeadContext): ResponseHead | null {
  let eol = text.indexOf('\r\n');
  if (eol < 0) eol = text.length;
  // Status line: HTTP/1.x SP 3DIGIT [SP reason]
  if (eol < 12 || !text.startsWith('HTTP/1.') || (eol > 12 && text.charCodeAt(12) !== 32)) return null;
  const minor = text.charCodeAt(7) - 48;
  const status = parseStatus(text);
  if (status < 0 || (minor !== 0 && minor !== 1)) return null;
  let reason = eol > 13 ? text.slice(13, eol) : '';
  // A bare CR may end the line for a lenient parser: refused, as in any line.
  if (reason.includes('\r')) return null;
  // Otherwise the phrase means nothing to clients (RFC 9112 §4): one with
  // control bytes is replaced by the standard phrase rather than refused.
  if (NOT_FIELD_TEXT.test(reason)) reason = '';

  const head: ResponseHead = { status, reason, headers: [], framing: Framing.None, length: -1, keepAlive: minor === 1, keepAliveHintMs: -1 };
  const headers = head.headers;
  const upgrade = status === 101;
  if (upgrade && !ctx.upgrade) return null;
  let length = -1;
  let lengthText = '';
  let codings: string[] | null = null;
  let connection: string | null = null;
  let pos = eol + 2;
  while (pos < text.length) {
    let next = text.indexOf('\r\n', pos);
    if (next < 0) next = text.length;
    const colon = text.indexOf(':', pos);
    if (colon < 0 || colon > next) return null;
    const name = text.slice(pos, colon);
    // Also refuses obs-fold (a line starting with SP) and spaces before the colon.
    if (!TOKEN.test(name)) return null;
    const value = trimOws(text, colon + 1, next);
    if (NOT_FIELD_TEXT.test(value)) return null;
    pos = next + 2;
    const n = name.length;
    if (n === 7 || n === 10 || n === 14 || n === 16 || n === 17) {
      const lower = name.toLowerCase();
      if (lower === 'content-length') {
        const v = parseDigits(value);
        if (v < 0 || (length >= 0 && v !== length)) return null;
        length = v;
        lengthText = value;
        continue;
      } else if (lower === 'transfer-encoding') {
        // Parsers disagree on whether `chunked<TAB>` ends in chunked: refused.
        if (endsWithOws(text, next)) return null;
        codings ??= [];
        if (!addCodings(codings, value)) return null;
        continue;
      } else if (lower === 'connection') {
        connection = connection === null ? value : `${connection},${value}`;
        if (upgrade) headers.push(name, value);
        continue;
      } else if (lower === 'keep-alive') {
        const at = value.indexOf('timeout=');
        if (at >= 0) head.keepAliveHintMs = parseInt(value.slice(at + 8), 10) * 1000 || 0;
        continue;
      } else if (lower === 'upgrade') {
        if (upgrade) headers.push(name, value);
        continue;
      } else if (lower === 'proxy-connection' || lower === 'trailer') {
        continue;
      }
    }
    headers.push(name, value);
  }

  if (connection !== null) {
    const tokens = connection.toLowerCase();
    if (tokens.includes('close')) head.keepAlive = false;
    else if (minor === 0 && tokens.includes('keep-alive')) head.keepAlive = true;
    if (!upgrade && tokens !== 'keep-alive' && tokens !== 'close') dropNamed(headers, tokens);
  }

  // Transfer-Encoding with Content-Length is how response splitting starts
  // (RFC 9112 §6.3 calls it an error to be handled): refused outright.
  if (codings !== null && length >= 0) return null;
  if (upgrade || status < 200 || status === 204) return head;
  if (status === 304 || ctx.noBody) {
    // The length of the body a GET would have had: passed on, nothing follows.
    if (length >= 0) headers.push('Content-Length', lengthText);
    return head;
  }
  if (codings !== null) {
    const chunked = codings.length > 0 && codings[codings.length - 1] === 'chunked';
    if (chunked) codings.pop();
    // Other codings are the client's to undo; the proxy re-chunks the body after them.
    if (codings.length > 0) headers.push('Transfer-Encoding', `${codings.join(', ')}, chunked`);
    if (chunked) head.framing = Framing.Chunked;
    else {
      head.framing = Framing.UntilClose;
      head.keepAlive = false;
    }
  } else if (length >= 0) {
    head.framing = Framing.Length;
    head.length = length;
    headers.push('Content-Length', lengthText);
  } else {
    head.framing = Framing.UntilClose;
    head.keepAlive = false;
  }
  return head;
}

/**
 * Transfer-coding names of one header value, lower-cased; chunked may only
 * come last, once. Empty list elements are refused: parsers disagree on
 * whether `gzip, chunked,` ends in chunked.
 */
function addCodings(codings: string[], value: string): boolean {
  for (const part of value.split(',')) {
    const coding = part.trim().toLowerCase();
    if (coding === '') return false;
    const name = coding.split(';', 1)[0]!.trim();
    if (!TOKEN.test(name)) return false;
    if (codings.length > 0 && codings[codings.length - 1] === 'chunked') return false;
    codings.push(coding);
  }
  return true;
}

function parseStatus(text: string): number {
  const a = text.charCodeAt(9) - 48;
  const b = text.charCodeAt(10) - 48;
  const c = text.charCodeAt(11) - 48;
  if (text.charCodeAt(8) !== 32 || a < 1 || a > 9 || b < 0 || b > 9 || c < 0 || c > 9) return -1;
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

function endsWithOws(text: string, end: number): boolean {
  const c = text.charCodeAt(end - 1);
  return c === 32 || c === 9;
}

function trimOws(text: string, start: number, end: number): string {
  while (start < end && (text.charCodeAt(start) === 32 || text.charCodeAt(start) === 9)) start++;
  while (end > start && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
  return text.slice(start, end);
}

/** Removes, in place, the headers the app listed in Connection (RFC 9110 §7.6.1). */
function dropNamed(headers: string[], tokens: string): void {
  const named = new Set(tokens.split(',').map((t) => t.trim()).filter(Boolean));
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    if (named.has(headers[r]!.toLowerCase())) continue;
    headers[w++] = headers[r]!;
    headers[w++] = headers[r + 1]!;
  }
  headers.length = w;
}
