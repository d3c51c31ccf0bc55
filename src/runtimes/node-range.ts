// engines.node → one Node version, as Heroku's Node buildpack picks it: the
// highest release that satisfies the range. Pure functions: what the registry
// serves and what is installed come in as lists.
import semver from 'semver';
import { UserError } from '../errors.js';


/** The binary package the registry serves Node in for this machine (bin/node inside). */
export function nodePackageName(arch: string = process.arch, platform: string = process.platform): string {
  if (platform !== 'linux' || (arch !== 'x64' && arch !== 'arm64')) {
    throw new UserError(`engines.node needs a Node binary for ${platform}-${arch}, which the registry does not serve (only linux-x64 and linux-arm64): remove engines.node to run on the server's Node`);
  }
  return `node-${platform}-${arch}`;
}

/** package.json's engines.node: the range as written, or null when it sets none. */
export function enginesNode(pkg: unknown): string | null {
  const engines = (pkg as { engines?: unknown } | null)?.engines;
  if (!engines || typeof engines !== 'object') return null;
  const range = (engines as { node?: unknown }).node;
  if (range === undefined || range === null) return null;
  if (typeof range !== 'string' && typeof range !== 'number') {
    throw new UserError('package.json engines.node must be a version range like "18.x" or ">=20 <23"');
  }
  const text = String(range).trim();
  if (text === '') return null;
  if (text.length > 100) throw new UserError('package.json engines.node is longer than 100 characters: use a range like "18.x" or ">=20 <23"');
  if (semver.validRange(text) === null) {
    throw new UserError(`engines.node ${JSON.stringify(text)} is not a semver range: use one like "18.x", "22" or ">=20 <23"`);
  }
  return text;
}

/** "26.12.1, 25.9.0, 24.22.3, …": the newest release of each of the latest lines. */
export function describeLines(versions: string[], lines = 6): string {
  const newest = new Map<number, string>();
  for (const v of versions) {
    const major = semver.major(v);
    if (!newest.has(major) || semver.gt(v, newest.get(major)!)) newest.set(major, v);
  }
  const majors = [...newest.keys()].sort((a, b) => b - a);
  if (majors.length === 0) return 'none';
  const shown = majors.slice(0, lines).map((m) => newest.get(m)!);
  return shown.join(', ') + (majors.length > lines ? `, … down to ${majors[majors.length - 1]}.x` : '');
}

/** Released versions only: no pre-releases, nothing semver cannot read. */
export function stableVersions(versions: Iterable<string>): string[] {
  return [...versions].filter((v) => semver.valid(v) === v && semver.prerelease(v) === null);
}

export interface NodeChoice {
  version: string;
  /** The registry could not be reached, so an installed version was taken. */
  offline: string | null;
}

/**
 * The highest version satisfying range: from what the registry serves when it
 * answered (`served`), else from what is installed, with the reason kept.
 * Throws a one-line UserError naming engines.node, the range and what there is.
 */
export function chooseNode(range: string, served: string[] | { unreachable: string }, installed: string[]): NodeChoice {
  if (Array.isArray(served)) {
    const version = semver.maxSatisfying(stableVersions(served), range);
    if (version) return { version, offline: null };
    throw new UserError(`engines.node ${JSON.stringify(range)} matches no Node release the registry serves; available: ${describeLines(stableVersions(served))}`);
  }
  const version = semver.maxSatisfying(installed, range);
  if (version) return { version, offline: served.unreachable };
  throw new UserError(`engines.node ${JSON.stringify(range)} needs a Node release that is not installed here, and ${served.unreachable}; installed: ${installed.length ? installed.join(', ') : 'none'}`);
}

/** Satisfies, allowing a missing range (anything goes). */
export function runsOn(nodeVersion: string, engines: string | undefined): boolean {
  return !engines || semver.satisfies(nodeVersion, engines);
}

/** The newest npm whose own engines.node accepts nodeVersion, or null. */
export function npmFor(nodeVersion: string, npms: Array<{ version: string; engines?: { node?: string } }>): string | null {
  const fitting = npms.filter((p) => semver.valid(p.version) === p.version && semver.prerelease(p.version) === null && p.engines?.node && runsOn(nodeVersion, p.engines.node));
  return semver.maxSatisfying(fitting.map((p) => p.version), '*');
}
