// Installs a Node release from the registry's binary package into the runtimes
// folder, with an npm that runs on it when the server's npm does not (npm 11
// needs Node ≥ 20.17; a Node 18 runtime gets npm 10).
import fs from 'node:fs';
import path from 'node:path';

import { nodePackageName, npmFor, runsOn } from './node-range.js';
import type { NpmRegistry, PackageVersion } from './npm-registry.js';
import { linkNpmBins, type RuntimeInfo, type RuntimeStore } from './runtime-store.js';
import { serverNpm } from './server-npm.js';
import { downloadVerified, unpack } from './tarball.js';
import { UserError } from '../errors.js';

const MB = 1024 * 1024;

export class NodeInstaller {
  constructor(private readonly registry: NpmRegistry, private readonly store: RuntimeStore) {}

  /** The server's npm, if it runs on nodeVersion. */
  private fittingServerNpm(nodeVersion: string): string | null {
    const npm = serverNpm();
    return npm && runsOn(nodeVersion, npm.engines?.node) ? npm.version : null;
  }

  /** Which npm builds on this runtime use, for the deploy output. */
  describeNpm(info: RuntimeInfo): string {
    const server = serverNpm();
    if (!info.npm) return `npm ${server?.version ?? '?'} (the server's) for builds`;
    const why = server ? `the server's npm ${server.version} needs Node ${server.engines?.node ?? '?'}` : 'the server has no npm';
    return `npm ${info.npm} for builds (${why})`;
  }

  /** The runtime for version, installed first when it is not; progress lines go to say(). */
  async ensure(version: string, say: (line: string) => void = () => {}): Promise<RuntimeInfo> {
    const info = this.store.info(version) ?? (await this.store.install(version, (staging) => this.fill(version, staging, say)));
    if (info.npm || this.fittingServerNpm(version)) return info;
    return this.store.addNpm(version, (dir) => this.unpackNpm(version, dir, say));
  }

  private async fill(version: string, staging: string, say: (line: string) => void): Promise<Pick<RuntimeInfo, 'npm' | 'integrity'>> {
    const started = Date.now();
    const name = nodePackageName();
    const meta = (await this.registry.versions(name))[version];
    if (!meta) throw new UserError(`the registry serves no ${name}@${version}: pick another version in engines.node`);
    say(`installing ${name}@${version} into the shared runtimes folder`);
    const bytes = await this.unpackVerified(`${name}@${version}`, meta, staging);
    const node = path.join(staging, 'bin', 'node');
    if (!fs.lstatSync(node, { throwIfNoEntry: false })?.isFile()) throw new UserError(`${name}@${version} holds no bin/node: not installed`);
    let npm: string | null = null;
    if (!this.fittingServerNpm(version)) {
      npm = await this.unpackNpm(version, path.join(staging, 'lib', 'node_modules', 'npm'), say);
      linkNpmBins(staging);
    }
    say(`installed Node ${version}${npm ? ` and npm ${npm}` : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s (${Math.round(bytes / MB)} MB download)`);
    return { npm, integrity: meta.dist.integrity! };
  }

  /** The newest npm that runs on nodeVersion, unpacked into dir; resolves to its version. */
  private async unpackNpm(nodeVersion: string, dir: string, say: (line: string) => void): Promise<string> {
    const npms = await this.registry.versions('npm');
    const version = npmFor(nodeVersion, Object.values(npms));
    if (!version) throw new UserError(`no npm release runs on Node ${nodeVersion}, so its builds cannot run: pick a newer engines.node`);
    say(`installing npm ${version}, which runs on Node ${nodeVersion}`);
    await this.unpackVerified(`npm@${version}`, npms[version]!, dir);
    return version;
  }

  /** Downloads, checks the sha512 and unpacks into dir; resolves to the download's size. */
  private async unpackVerified(label: string, meta: PackageVersion, dir: string): Promise<number> {
    fs.mkdirSync(dir, { recursive: true });
    const file = `${dir}.download.tgz`;
    try {
      const bytes = await downloadVerified(label, meta, file);
      await unpack(label, file, dir);
      return bytes;
    } finally {
      fs.rmSync(file, { force: true });
    }
  }
}
