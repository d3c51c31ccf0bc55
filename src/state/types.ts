// The persisted shape of the platform: one JSON document, written atomically.

export type ReleaseSource = 'git' | 'rsync' | 'deploy' | 'config' | 'rollback' | 'scale';
export type ReleaseStatus = 'building' | 'succeeded' | 'failed';

export interface ReleaseRecord {
  version: number;
  /** Folder under releases/ holding the built code; shared by config and rollback releases. */
  build: string;
  source: ReleaseSource;
  commit: string | null;
  description: string;
  by: string;
  createdAt: string;
  status: ReleaseStatus;
  /** Config vars this release runs with (a snapshot, so rollback restores them). */
  config: Record<string, string>;
  /** It made its build folder (push, upload), rather than reusing another release's (config, rollback). */
  ownBuild?: boolean;
  /** For a git push: the branch it moved and its commit before, so a push cut short by a crash can be undone. */
  ref?: { name: string; old: string };
  /** The Node.js version (DATA/runtimes/<node>) this release's build was made for, from engines.node; absent: the server's own. */
  node?: string;
}

export interface TokenRecord {
  id: string;
  /** sha256 of the secret, hex. The secret itself is shown once and never stored. */
  hash: string;
  createdAt: string;
  lastUsed: string | null;
}

export interface Limits {
  memoryMb: number;
  pids: number;
  nofile: number;
}

export interface AppRecord {
  name: string;
  domains: string[];
  createdAt: string;
  tokens: TokenRecord[];
  /** Version of the release that serves, or null before the first deploy (the records: ReleaseHistory). */
  current: number | null;
  config: Record<string, string>;
  /** Process counts by Procfile type; missing types run 0 except web (1). */
  formation: Record<string, number>;
  limits: Limits;
  /** System uid/gid of the app when the sandbox is on; allocated once and kept. */
  uid: number | null;
  /** What a crash did to the app's last change, told once by its next deploy. */
  notice?: string;
  /** HTTPS settings (certs:auto, certs:redirect, certs:hsts); absent means the defaults. */
  certs?: CertSettings;
}

export interface CertSettings {
  /** Certificates from the ACME CA for the app's domains. */
  auto: boolean;
  /** Plain HTTP gets 308 to HTTPS once a host has a valid certificate (default on). */
  redirect: boolean;
  /** Strict-Transport-Security on HTTPS answers (default off). */
  hsts: boolean;
}

export interface KeyRecord {
  name: string;
  /** OpenSSH one-line form: "ssh-ed25519 AAAA…". */
  publicKey: string;
  fingerprint: string;
  admin: boolean;
  apps: string[];
  addedAt: string;
  lastUsed: string | null;
}

export interface PlatformState {
  version: 1;
  apps: Record<string, AppRecord>;
  keys: KeyRecord[];
  nextUid: number;
}

export const DEFAULT_LIMITS: Limits = { memoryMb: 512, pids: 256, nofile: 4096 };
