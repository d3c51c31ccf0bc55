import fs from 'node:fs';
import net from 'node:net';

/** Below the kernel's ephemeral range: a port handed to an app is never one that any
 *  process's `listen(0)` or outgoing connection might take between our check and the
 *  app's own bind (other servers on the machine open listeners on port 0 all the time). */
const APP_PORTS_FROM = 10_000;

/**
 * Finds a free loopback port for a new process: a random port below the
 * ephemeral range that nothing listens on. A short list of ports handed out but
 * not yet bound keeps two deploys starting at once from getting the same one; the
 * health check still verifies that the listener is the process we started.
 */
export class PortAllocator {
  private readonly handedOut = new Set<number>();
  private readonly below = ephemeralStart();

  async next(): Promise<number> {
    for (let attempt = 0; attempt < 50; attempt++) {
      const port = this.below > APP_PORTS_FROM + 1000
        ? APP_PORTS_FROM + Math.floor(Math.random() * (this.below - APP_PORTS_FROM))
        : await ephemeralPort();
      if (this.handedOut.has(port) || !(await isFree(port))) continue;
      this.handedOut.add(port);
      setTimeout(() => this.handedOut.delete(port), 120_000).unref();
      return port;
    }
    throw new Error('no free port found after 50 tries');
  }
}

function ephemeralStart(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || 0;
  } catch {
    return 0;
  }
}

/** Nothing listens on port, on any address (the app binds every address by default). */
function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, () => srv.close(() => resolve(true)));
  });
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
