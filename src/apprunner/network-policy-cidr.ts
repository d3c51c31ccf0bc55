import net from 'node:net';

/** An address range as nft takes it: `10.0.0.0/8`, `fd00:ec2::254/128`. */
export interface Cidr {
  family: 4 | 6;
  /** The range as written (validated: a network address and its prefix length). */
  text: string;
}

/** Why a range was refused; the caller names the flag it came from. */
export class CidrError extends Error {
  readonly code = 'BAD_CIDR';
}

function toBytes(address: string, family: 4 | 6): number[] {
  if (family === 4) return address.split('.').map(Number);
  // An embedded IPv4 address (::ffff:10.0.0.1) stands for the last two groups.
  const cut = address.lastIndexOf(':') + 1;
  const v4 = address.slice(cut).includes('.') ? toBytes(address.slice(cut), 4) : null;
  const [head = '', tail] = (v4 ? `${address.slice(0, cut)}0:0` : address).split('::');
  const words = (s: string | undefined) => (s ? s.split(':').map((g) => parseInt(g, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = [...h, ...Array<number>(8 - h.length - t.length).fill(0), ...t];
  const bytes = all.flatMap((w) => [w >> 8, w & 0xff]);
  if (v4) bytes.splice(12, 4, ...v4);
  return bytes;
}

function fromBytes(bytes: number[], family: 4 | 6): string {
  if (family === 4) return bytes.join('.');
  const words = Array.from({ length: 8 }, (_, i) => (bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // Collapse the longest run of zero groups, as an operator would write it.
  let best = { at: -1, len: 0 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > best.len && j - i > 1) best = { at: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/**
 * Reads `ADDRESS/PREFIX` (or one address, a /32 or /128). Refuses an address with
 * bits set past the prefix: `10.1.2.3/8` could mean the host or the network, so
 * the message spells out both.
 */
export function parseCidr(text: string): Cidr {
  const [address = '', prefixText, extra] = text.trim().split('/');
  const family = net.isIP(address);
  if ((family !== 4 && family !== 6) || extra !== undefined || address.includes('%')) {
    throw new CidrError(`'${text}' is not an address range: write ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8`);
  }
  const max = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefixText === '' || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new CidrError(`'${text}': the prefix length must be a whole number 0-${max}`);
  }
  const bytes = toBytes(address, family);
  const network = bytes.map((b, i) => {
    const keep = Math.min(8, Math.max(0, prefix - 8 * i));
    return b & (0xff << (8 - keep)) & 0xff;
  });
  if (network.some((b, i) => b !== bytes[i])) {
    throw new CidrError(`'${text}' has bits set past /${prefix}: write ${fromBytes(network, family)}/${prefix} for the network or ${address}/${max} for the one address`);
  }
  return { family, text: `${fromBytes(network, family)}/${prefix}` };
}
