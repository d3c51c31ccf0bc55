// Certificates on disk under DATA/certs, each in one file (key, then chain),
// mode 0600, written atomically: a crash leaves the old bundle or the new one,
// never a key beside the wrong certificate.
//
//   certs/self-signed.pem   certs/default.pem   certs/account-key.pem   certs/account.json
//   certs/status.json       certs/apps/APP/manual.pem   certs/apps/APP/auto/HOST.pem
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../state/atomic-file.js';
import { bundlePem, parseBundle, type Certificate } from './certificate.js';

export class CertStore {
  constructor(readonly dir: string) {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    fs.chmodSync(dir, 0o700);
    this.removeTemps(dir);
  }

  get selfSignedFile() { return path.join(this.dir, 'self-signed.pem'); }
  get defaultFile() { return path.join(this.dir, 'default.pem'); }
  get accountKeyFile() { return path.join(this.dir, 'account-key.pem'); }
  get accountFile() { return path.join(this.dir, 'account.json'); }
  get statusFile() { return path.join(this.dir, 'status.json'); }
  private appDir(app: string) { return path.join(this.dir, 'apps', app); }
  manualFile(app: string) { return path.join(this.appDir(app), 'manual.pem'); }
  // Hostnames were validated (letters, digits, '-', '.'), so they are safe file names.
  autoFile(app: string, host: string) { return path.join(this.appDir(app), 'auto', `${host}.pem`); }

  /**
   * The bundle in file, or null when there is none or it cannot be used
   * (then unusable(why) is told, and the file is replaced when one is made).
   */
  read(file: string, unusable: (why: string) => void = () => {}): Certificate | null {
    let pem: string;
    try {
      pem = fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
    try {
      return parseBundle(pem, file);
    } catch (err) {
      unusable((err as Error).message);
      return null;
    }
  }

  write(file: string, cert: Pick<Certificate, 'key' | 'chain'>): void {
    this.writeText(file, bundlePem(cert));
  }

  writeText(file: string, text: string): void {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    writeFileAtomic(file, text);
  }

  readText(file: string): string | null {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return null;
    }
  }

  remove(file: string): void {
    fs.rmSync(file, { force: true });
  }

  /** Hosts that have an auto certificate file for app. */
  autoHosts(app: string): string[] {
    try {
      return fs.readdirSync(path.join(this.appDir(app), 'auto')).filter((f) => f.endsWith('.pem')).map((f) => f.slice(0, -4));
    } catch {
      return [];
    }
  }

  /** Apps that have a folder here (some may have been destroyed while the server was down). */
  apps(): string[] {
    try {
      return fs.readdirSync(path.join(this.dir, 'apps'));
    } catch {
      return [];
    }
  }

  removeApp(app: string): void {
    fs.rmSync(this.appDir(app), { recursive: true, force: true });
  }

  /** A killed server can leave a temp file holding a private key: remove them all. */
  private removeTemps(dir: string): void {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, entry.name);
      if (entry.isDirectory()) this.removeTemps(p);
      else if (entry.name.endsWith('.tmp')) fs.rmSync(p, { force: true });
    }
  }
}
