import net from 'node:net';

/**
 * Finds a free loopback port for a new process. The kernel picks it; we keep a
 * short list of ports handed out but not yet bound, so two deploys starting at
 * once never get the same one.
 */
export class PortAllocator {
  private readonly handedOut = new Set<number>();

  async next(): Promise<number> {
    for (let attempt = 0; attempt < 20; attempt++) {
      const port = await ephemeralPort();
      if (!this.handedOut.has(port)) {
        this.handedOut.add(port);
        setTimeout(() => this.handedOut.delete(port), 120_000).unref();
        return port;
      }
    }
    throw new Error('no free port found after 20 tries');
  }
}

function ephemeralPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}
