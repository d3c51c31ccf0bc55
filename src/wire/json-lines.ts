// Newline-delimited JSON, the framing of the control socket, the data plane's
// socket and Maestro 0.3's DNode RPC: bytes in, complete lines or messages out.
// It imports nothing, so the git hooks (plain CommonJS) load it from dist/ cheaply.

/** The unfinished line grew past the limit the protocol sets. */
export class LineTooLongError extends Error {
  readonly code = 'ELINETOOLONG';
  constructor(readonly maxLine: number) {
    super(`a line longer than ${maxLine} bytes`);
  }
}

/**
 * A feed for a byte stream: calls onLine with each complete line, without its
 * '\n', in order. Works on bytes, so a character split across chunks stays whole.
 * A line (finished or not) longer than maxLine bytes throws LineTooLongError,
 * after the lines before it were handed on; so does whatever onLine throws.
 */
export function splitLines(onLine: (line: string) => void, maxLine = Infinity): (chunk: Buffer | string) => void {
  let held: Buffer[] = [];
  let heldBytes = 0;
  return (chunk) => {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    let start = 0;
    let nl: number;
    while ((nl = bytes.indexOf(0x0a, start)) >= 0) {
      const length = heldBytes + nl - start;
      if (length > maxLine) throw new LineTooLongError(maxLine);
      let line = bytes.subarray(start, nl);
      if (held.length) {
        held.push(line);
        line = Buffer.concat(held, length);
        held = [];
        heldBytes = 0;
      }
      start = nl + 1;
      onLine(line.toString('utf8'));
    }
    if (start < bytes.length) {
      held.push(bytes.subarray(start));
      heldBytes += bytes.length - start;
      if (heldBytes > maxLine) throw new LineTooLongError(maxLine);
    }
  };
}

/**
 * A feed that parses each line as one JSON message; blank lines are skipped.
 * A line that is not JSON throws JSON.parse's SyntaxError (limits: see splitLines).
 */
export function readJsonLines(onMessage: (msg: unknown) => void, maxLine = Infinity): (chunk: Buffer | string) => void {
  return splitLines((line) => {
    if (line.trim()) onMessage(JSON.parse(line));
  }, maxLine);
}

/** One message as a line (JSON.stringify never writes a raw newline). */
export function encodeJsonLine(msg: unknown): string {
  return JSON.stringify(msg) + '\n';
}
