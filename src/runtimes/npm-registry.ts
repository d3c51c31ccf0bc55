// The npm registry as the runtimes need it: which versions of a package it
// serves, and their tarballs. The registry is the one npm is configured with
// (`npm config get registry`: .npmrc, npm_config_registry), so a machine behind
// a mirror gets its Node releases from the mirror too.
import { execa } from 'execa';

export interface NpmConfig {
  /** With a trailing slash. */
  registry: string;
  /** The server's global npmrc (registry mirror, cafile), which npm on a runtime's node would not find by itself. */
  globalconfig: string | null;
}

/** npm's own default, used when npm itself cannot say. */
export const NPM_DEFAULT_REGISTRY = 'https://registry.npmjs.org/';

const METADATA_TIMEOUT_MS = 30_000;

export interface PackageVersion {
  version: string;
  dist: { tarball: string; integrity?: string };
  engines?: { node?: string };
}

export type RegistryErrorCode = 'unreachable' | 'not-found' | 'bad-answer';

/** The registry could not answer; `code` says whether retrying later may help. */
export class RegistryError extends Error {
  constructor(message: string, readonly code: RegistryErrorCode) {
    super(message);
  }
}

/** Why a fetch failed, in a word or two (ECONNREFUSED, ENOTFOUND, timeout). */
export function fetchFailure(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'TimeoutError' || e.name === 'AbortError') return 'timed out';
  return e.cause?.code ?? e.cause?.message ?? e.message;
}

/** What the server's npm is configured with here; npm's defaults when it cannot say. */
export async function readNpmConfig(): Promise<NpmConfig> {
  // A failed or stuck npm is not an error here: npm's defaults stand in for its answer.
  const npm = await execa('npm', ['config', 'get', 'registry', 'globalconfig'], { stdin: 'ignore', reject: false, timeout: 15_000 });
  const values = new Map(npm.stdout.split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1).trim()]));
  const url = npm.failed ? '' : (values.get('registry') ?? '');
  const globalconfig = npm.failed ? '' : (values.get('globalconfig') ?? '');
  return {
    registry: /^https?:\/\/\S+$/.test(url) ? (url.endsWith('/') ? url : `${url}/`) : NPM_DEFAULT_REGISTRY,
    globalconfig: globalconfig.startsWith('/') ? globalconfig : null,
  };
}

export class NpmRegistry {
  /** Requests under way: deploys asking at the same time share one. Each new deploy asks afresh, so it sees new releases (and a registry gone down). */
  private readonly inFlight = new Map<string, Promise<Record<string, PackageVersion>>>();
  private config: Promise<NpmConfig> | null = null;

  /** npm's configuration here, asked once. */
  npmConfig(): Promise<NpmConfig> {
    return (this.config ??= readNpmConfig());
  }

  private async registry(): Promise<string> {
    return (await this.npmConfig()).registry;
  }

  /** Every published version of a package with its dist, from the abbreviated packument. */
  versions(name: string): Promise<Record<string, PackageVersion>> {
    let versions = this.inFlight.get(name);
    if (!versions) {
      versions = this.fetchVersions(name).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, versions);
    }
    return versions;
  }

  private async fetchVersions(name: string): Promise<Record<string, PackageVersion>> {
    const registry = await this.registry();
    const url = new URL(name, registry);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { accept: 'application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8' },
        signal: AbortSignal.timeout(METADATA_TIMEOUT_MS),
      });
    } catch (err) {
      throw new RegistryError(`the registry ${registry} cannot be reached (${fetchFailure(err)})`, 'unreachable');
    }
    if (res.status === 404) throw new RegistryError(`the registry ${registry} has no package ${name}`, 'not-found');
    if (!res.ok) throw new RegistryError(`the registry ${registry} answered ${res.status} for ${name}`, 'unreachable');
    let body: { versions?: unknown };
    try {
      body = (await res.json()) as { versions?: unknown };
    } catch (err) {
      throw new RegistryError(`the registry ${registry} sent no valid JSON for ${name}: ${fetchFailure(err)}`, 'bad-answer');
    }
    if (!body.versions || typeof body.versions !== 'object') {
      throw new RegistryError(`the registry ${registry} listed no versions for ${name}`, 'bad-answer');
    }
    const out: Record<string, PackageVersion> = {};
    for (const [v, meta] of Object.entries(body.versions as Record<string, Partial<PackageVersion>>)) {
      if (typeof meta?.dist?.tarball === 'string') out[v] = { version: v, dist: meta.dist, engines: meta.engines };
    }
    return out;
  }
}
