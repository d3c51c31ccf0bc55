// TLS session tickets for an HTTPS listener. Left to itself, Node gives every
// TLS context a ticket key of its own and never sends a new ticket when a
// client resumes. TLS 1.3 clients use a ticket once (RFC 8446 §C.4; OpenSSL and
// browsers do), so every other reconnection paid a full handshake. Here every
// context of a listener (its own and each SNI one) shares one key set, which
// the data plane gives all its proxy workers so that a client resumes on any of
// them, and a resumed connection is sent a fresh ticket.
//
// The renewal goes through Node's ticket-key callback: undocumented API on the
// native context (enableTicketKeyCallback, onticketkeycallback), present in
// Node 20 and 24 (kept for Node's own test-https-resume-after-renew). Node's
// native side aborts the process on a reply of the wrong shape, so the reply is
// always the full array with 16-byte buffers. Where the API is missing, the
// keys are still shared (setTicketKeys, documented) and tickets are not renewed.
import crypto from 'node:crypto';
import type tls from 'node:tls';

/** Name, HMAC secret and AES key, 16 bytes each: the layout of Node's setTicketKeys. */
export const TICKET_KEYS_BYTES = 48;
const PART = 16;

/** What OpenSSL is told about a ticket it presents to be decrypted (RFC 5077 callback values). */
const NOT_OURS = 0;
const ENCRYPTED = 1;
const DECRYPTED_RENEW = 2;

type TicketReply = [number, Buffer, Buffer, Buffer, Buffer];
interface NativeContext {
  setTicketKeys(keys: Buffer): void;
  enableTicketKeyCallback?: () => void;
  onticketkeycallback?: (name: Buffer, iv: Buffer, encrypt: boolean) => TicketReply;
}

export function newTicketKeys(): Buffer {
  return crypto.randomBytes(TICKET_KEYS_BYTES);
}

export class SessionTickets {
  private readonly keys: Buffer;
  private readonly name: Buffer;
  private readonly hmac: Buffer;
  private readonly aes: Buffer;
  /** One function for every context: it allocates nothing but the IV. */
  private readonly reply = (name: Buffer, _iv: Buffer, encrypt: boolean): TicketReply => {
    if (encrypt) return [ENCRYPTED, this.hmac, this.aes, this.name, crypto.randomBytes(PART)];
    return [name.equals(this.name) ? DECRYPTED_RENEW : NOT_OURS, this.hmac, this.aes, this.name, this.name];
  };

  constructor(keys: Buffer = newTicketKeys()) {
    if (keys.length !== TICKET_KEYS_BYTES) throw new Error(`session ticket keys must be ${TICKET_KEYS_BYTES} bytes, got ${keys.length}`);
    this.keys = Buffer.from(keys);
    this.name = this.keys.subarray(0, PART);
    this.hmac = this.keys.subarray(PART, 2 * PART);
    this.aes = this.keys.subarray(2 * PART);
  }

  /**
   * Every context a handshake can use: OpenSSL runs the callback of the
   * listener's own context, and Node's callback then asks whichever context
   * SNI chose, so each needs the reply.
   */
  attach(ctx: tls.SecureContext): void {
    const native = (ctx as unknown as { context: NativeContext }).context;
    native.setTicketKeys(this.keys);
    if (typeof native.enableTicketKeyCallback !== 'function') return;
    native.onticketkeycallback = this.reply;
    native.enableTicketKeyCallback();
  }
}
