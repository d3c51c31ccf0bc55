// One authentication request of a connection: only public keys are offered, and
// failures are counted as sshd's MaxAuthTries does (the auth timeout bounds everything else).
import type { AuthContext } from 'ssh2';
import type { StateStore } from '../state/store.js';
import type { ConnectionState } from './connection-state.js';
import { callerOf, checkPublicKey, recordKeyUse } from './key-auth.js';

export function authenticate(ctx: AuthContext, conn: ConnectionState, store: StateStore, log: (line: string) => void): void {
  const fail = () => {
    if (conn.authFailed()) {
      ctx.reject([]);
      conn.drop();
    } else {
      ctx.reject(['publickey']);
    }
  };
  // Password, keyboard-interactive, hostbased and "none" are refused; only keys are offered.
  // ("none" is how every client starts, so it does not count as a failure.)
  if (ctx.method === 'none') return ctx.reject(['publickey']);
  if (ctx.method !== 'publickey') return fail();
  const check = checkPublicKey(store, ctx);
  if (check.result === 'probe') return ctx.accept(); // "this key would do: sign with it" — not yet authenticated
  if (check.result === 'rejected') return fail();
  conn.caller = callerOf(check.key);
  ctx.accept();
  try {
    recordKeyUse(store, check.key.fingerprint);
  } catch (err) {
    log(`cannot record last use of key ${check.key.name}: ${(err as Error).message}`);
  }
}
