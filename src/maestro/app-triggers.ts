// What other components do when an app comes or goes, as Dokku's triggers do
// (in-process and typed): the registry runs them and knows no transport. Git
// makes the bare repo; SSH drops the app from deploy keys' scopes.

import type { PlatformState } from '../state/types.js';

export interface AppTriggers {
  /**
   * An app is being created: make what it needs before its record is written
   * (a throw refuses the create, and nothing is recorded).
   */
  appCreated: Array<(app: string) => void | Promise<void>>;
  /**
   * An app is destroyed: remove what refers to it from `state`, inside the one
   * update that removes its record, so no write leaves a dangling reference.
   */
  appDestroyed: Array<(app: string, state: PlatformState) => void>;
}

