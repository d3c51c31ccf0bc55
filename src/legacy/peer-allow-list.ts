// --dnode-allow CIDR[,CIDR]: the networks whose direct (untunnelled) DNode
// connections are trusted with every app.
import net from 'node:net';
import { UserError } from '../errors.js';


export class PeerAllowList {
  private readonly list = new net.BlockList();
  readonly entries: readonly string[];

  /** Each entry: an address (10.0.0.5, ::1) or a network (10.0.0.0/8, fd00::/8). Throws a one-line UserError. */
  constructor(entries: readonly string[]) {
    for (const entry of entries) {
      const [addr, bits, extra] = entry.split('/');
      const family = net.isIP(addr ?? '');
      const max = family === 4 ? 32 : 128;
      const prefix = bits === undefined ? max : Number(bits);
      if (!family || extra !== undefined || !/^\d{1,3}$/.test(bits ?? String(max)) || prefix > max) {
        throw new UserError(`--dnode-allow: '${entry}' is not an address or network: use CIDR like 10.0.0.0/8 or 192.168.1.5, separated by commas`);
      }
      this.list.addSubnet(addr!, prefix, family === 4 ? 'ipv4' : 'ipv6');
    }
    this.entries = [...entries];
  }

  allows(address: string | undefined): boolean {
    if (!address) return false;
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d.
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    const a = mapped ? mapped[1]! : address;
    const family = net.isIP(a);
    if (!family) return false;
    return this.list.check(a, family === 4 ? 'ipv4' : 'ipv6');
  }
}
