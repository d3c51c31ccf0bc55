import type { PlatformState } from '../state/types.js';

/** A destroyed app leaves every deploy key's scope (the appDestroyed trigger): a later app of that name is not theirs. */
export function dropAppFromKeys(app: string, state: PlatformState): void {
  for (const k of state.keys) k.apps = k.apps.filter((a) => a !== app);
}
