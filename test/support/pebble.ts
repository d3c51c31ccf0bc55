// A real ACME CA on loopback for the HTTPS tests: Debian's pebble and
// pebble-challtestsrv (its DNS), on free ports. pebble's own listener gets a
// certificate from a throwaway CA made here with openssl; the root it issues
// from changes at every start and is read from its management port.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { waitFor } from './apps.js';

export function hasPebble(): boolean {
  try {
    execFileSync('sh', ['-c', 'command -v pebble && command -v pebble-challtestsrv && command -v openssl'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** A test CA and certificates it signs, made with openssl in dir. */
export class TestCa {
  readonly certFile: string;
  private readonly keyFile: string;

  constructor(readonly dir: string) {
    this.certFile = path.join(dir, 'ca.pem');
    this.keyFile = path.join(dir, 'ca.key');
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', this.keyFile,
      '-out', this.certFile, '-days', '30', '-subj', '/CN=platformx test CA']);
  }

  get pem(): string {
    return fs.readFileSync(this.certFile, 'utf8');
  }

  /** A key and a certificate for names (DNS names or IPs), signed by this CA; returns their files. */
  issue(name: string, names: string[], days = 30): { cert: string; key: string } {
    const key = path.join(this.dir, `${name}.key`);
    const csr = path.join(this.dir, `${name}.csr`);
    const cert = path.join(this.dir, `${name}.pem`);
    const ext = path.join(this.dir, `${name}.ext`);
    const san = names.map((n) => (/^[\d.]+$/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
    fs.writeFileSync(ext, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
    openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', csr, '-subj', `/CN=${names[0]}`]);
    openssl(['x509', '-req', '-in', csr, '-CA', this.certFile, '-CAkey', this.keyFile, '-CAcreateserial', '-out', cert, '-days', String(days), '-extfile', ext]);
    return { cert, key };
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

export interface PebbleOptions {
  /** The proxy's HTTP port: where pebble's validator sends HTTP-01 requests. */
  httpPort: number;
  /** Lifetime of issued certificates in seconds (pebble's default is years). */
  validitySeconds?: number;
}

/** pebble and its DNS; the ACME directory is at `directoryUrl` once started. */
export class Pebble {
  readonly dir: string;
  readonly ca: TestCa;
  private dnsPort = 0;
  private dnsMgmtPort = 0;
  private acmePort = 0;
  private mgmtPort = 0;
  private pebble: ChildProcess | null = null;
  private dns: ChildProcess | null = null;
  output = '';

  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxpebble-'));
    this.ca = new TestCa(this.dir);
  }

  get directoryUrl(): string {
    return `https://127.0.0.1:${this.acmePort}/dir`;
  }

  /** Starts challtestsrv (every name resolves to 127.0.0.1 unless told otherwise) and picks pebble's ports. */
  async prepare(): Promise<void> {
    this.dnsPort = await freePort();
    this.dnsMgmtPort = await freePort();
    this.acmePort = await freePort();
    this.mgmtPort = await freePort();
    this.dns = this.spawn('pebble-challtestsrv', [
      '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '', '-dns01', `127.0.0.1:${this.dnsPort}`,
      '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${this.dnsMgmtPort}`,
    ]);
    await waitFor(() => portOpen(this.dnsMgmtPort), 15_000, 'pebble-challtestsrv');
  }

  /** Points name at address in pebble's DNS (127.0.0.2: nothing listens, the challenge fails). */
  async addA(name: string, address: string): Promise<void> {
    await postJson(this.dnsMgmtPort, '/add-a', { host: name, addresses: [address] });
  }

  async start(o: PebbleOptions): Promise<void> {
    const listener = this.ca.issue('pebble-listener', ['127.0.0.1', 'localhost']);
    const config = path.join(this.dir, 'pebble.json');
    fs.writeFileSync(config, JSON.stringify({
      pebble: {
        listenAddress: `127.0.0.1:${this.acmePort}`,
        managementListenAddress: `127.0.0.1:${this.mgmtPort}`,
        certificate: listener.cert,
        privateKey: listener.key,
        httpPort: o.httpPort,
        tlsPort: await freePort(),
        ocspResponderURL: '',
        externalAccountBindingRequired: false,
        ...(o.validitySeconds ? { certificateValidityPeriod: o.validitySeconds } : {}),
      },
    }));
    this.pebble = this.spawn('pebble', ['-config', config, '-dnsserver', `127.0.0.1:${this.dnsPort}`], {
      PEBBLE_VA_NOSLEEP: '1', PEBBLE_WFE_NONCEREJECT: '0',
    });
    await waitFor(async () => (await this.root()).includes('BEGIN CERTIFICATE'), 15_000, 'pebble to start');
  }

  /** The root pebble issues from in this run (it changes at every start). */
  root(): Promise<string> {
    return new Promise((resolve, reject) => {
      https.get({ host: '127.0.0.1', port: this.mgmtPort, path: '/roots/0', ca: this.ca.pem }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`roots: ${res.statusCode}`))));
      }).on('error', reject);
    });
  }

  async stopCa(): Promise<void> {
    await stopChild(this.pebble);
    this.pebble = null;
  }

  async destroy(): Promise<void> {
    await Promise.all([stopChild(this.pebble), stopChild(this.dns)]);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private spawn(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    child.stdout!.on('data', (d) => (this.output += d));
    child.stderr!.on('data', (d) => (this.output += d));
    return child;
  }
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function postJson(port: number, urlPath: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`${urlPath}: ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function stopChild(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(t);
}
