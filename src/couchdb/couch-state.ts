import fs from 'node:fs';
import path from 'node:path';
import { removeStaleTemps, writeFileAtomic } from '../state/atomic-file.js';

export type Side = 'primary' | 'replica';

/** One app's database and what the gateway must remember of it across restarts. */
export interface AppDatabase {
  db: string;
  /** The user name in the app's COUCHDB_URL. */
  user: string;
  /** sha256 (hex) of the app's secret; the secret itself is only in the app's config. */
  secretHash: string;
  /** The app record this database was made for: an app of the same name made later is another app. */
  appCreatedAt: string;
  createdAt: string;
  /** The server the app's traffic goes to. */
  side: Side;
  /**
   * Set while a failover is being undone: replica → primary replication runs,
   * and every change on the replica after `since` must reach the primary.
   */
  pull: { since: string | number } | null;
  /** How far primary → replica was last seen complete (a `_changes` seq of the primary). */
  pushSince: string | number;
}

export interface CouchState {
  version: 1;
  /** The gateway's port, kept so COUCHDB_URL stays valid across restarts. */
  gatewayPort: number | null;
  /** The embedded server's port, kept so its `_replicator` jobs' URLs stay valid. */
  embeddedPort: number | null;
  apps: Record<string, AppDatabase>;
}

/** DATA/couchdb/state.json, replaced atomically on every change (the src/state/store.ts way). */
export class CouchStateStore {
  private state: CouchState;

  constructor(private readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    this.state = read(file);
    removeStaleTemps(file);
  }

  get(): Readonly<CouchState> {
    return this.state;
  }

  app(name: string): Readonly<AppDatabase> | null {
    return Object.hasOwn(this.state.apps, name) ? this.state.apps[name]! : null;
  }

  /** Applies fn to a copy and persists it; if fn throws, nothing changes. */
  update<T>(fn: (draft: CouchState) => T): T {
    const draft = structuredClone(this.state);
    const result = fn(draft);
    writeFileAtomic(this.file, JSON.stringify(draft, null, 1));
    this.state = draft;
    return result;
  }
}

function read(file: string): CouchState {
  const empty: CouchState = { version: 1, gatewayPort: null, embeddedPort: null, apps: {} };
  try {
    return { ...empty, ...(JSON.parse(fs.readFileSync(file, 'utf8')) as CouchState) };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty;
    throw new Error(`cannot read ${file}: ${(err as Error).message}`);
  }
}
