// The keys:* CLI commands. Keys live in the state store and the SSH server reads
// them at each authentication, so every change applies to the next connection.
import { json, readInput, table, type CommandDef, type ParsedArgs } from '../control/command-table.js';
import type { CommandIO } from '../control/types.js';
import { checkAppName } from '../state/names.js';
import type { StateStore } from '../state/store.js';
import type { KeyRecord, PlatformState } from '../state/types.js';
import { parsePublicKey } from './public-keys.js';
import { UserError } from '../errors.js';

const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const MAX_STDIN = 64 * 1024;

export function checkKeyName(name: unknown): string {
  if (typeof name !== 'string' || !KEY_NAME.test(name)) {
    throw new UserError(`invalid key name '${String(name)}': use up to 64 letters, digits, '.', '_', '@' or '-', like alice@laptop`);
  }
  return name;
}

function findKey(state: Readonly<PlatformState>, name: string): KeyRecord {
  const key = state.keys.find((k) => k.name === name);
  if (!key) throw new UserError(`no key named '${name}': see 'platformx keys:list'`);
  return key;
}

function checkAppExists(state: Readonly<PlatformState>, app: string): string {
  checkAppName(app);
  if (!state.apps[app]) throw new UserError(`app '${app}' does not exist: create it first (platformx apps:create ${app})`);
  return app;
}

const scopeOf = (k: KeyRecord) => (k.admin ? 'admin' : k.apps.length ? k.apps.join(',') : '(no apps)');

/** keys:add NAME (--app APP … | --admin): the public key comes on stdin (the local CLI sends --file's content there). */
export async function keysAdd(store: StateStore, args: ParsedArgs, io: CommandIO): Promise<number> {
  const name = checkKeyName(args.positional[0]);
  if (args.flags.file !== undefined) {
    // Reading a path here would read the server's files; the local CLI reads --file on the user's side.
    throw new UserError('--file is read by the local platformx CLI; over SSH send the key on stdin: ssh … keys:add NAME --app APP < key.pub');
  }
  const admin = args.flags.admin === true;
  const apps = [...new Set(((args.flags.app as string[] | undefined) ?? []))];
  if (admin && apps.length) throw new UserError('give either --admin or --app APP, not both: an admin key already reaches every app');
  if (!admin && apps.length === 0) throw new UserError('say what the key may reach: --app APP (repeatable) or --admin');
  for (const app of apps) checkAppExists(store.get(), app);
  if (store.get().keys.some((k) => k.name === name)) throw new UserError(`a key named '${name}' already exists: pick another name or keys:remove it first`);

  const key = parsePublicKey(await readInput(io.stdin, MAX_STDIN, 'input too long: give one public key line on stdin'));
  const record = store.update((draft) => {
    // Checked again on the draft: the store may have changed while stdin was read.
    if (draft.keys.some((k) => k.name === name)) throw new UserError(`a key named '${name}' already exists: pick another name or keys:remove it first`);
    const same = draft.keys.find((k) => k.fingerprint === key.fingerprint);
    if (same) throw new UserError(`this key is already added as '${same.name}' (${key.fingerprint}): use keys:grant to give it more apps`);
    for (const app of apps) checkAppExists(draft, app);
    const rec: KeyRecord = {
      name, publicKey: key.line, fingerprint: key.fingerprint, admin, apps, addedAt: new Date().toISOString(), lastUsed: null,
    };
    draft.keys.push(rec);
    return rec;
  });
  io.stdout(`Added key ${record.name} (${record.fingerprint}) for ${admin ? 'all apps (admin)' : record.apps.join(', ')}\n`);
  return 0;
}

/** keys:list [--json] */
export function keysList(store: StateStore, args: ParsedArgs, io: CommandIO): number {
  const keys = store.get().keys;
  if (args.flags.json) {
    json(io, keys.map((k) => ({
      name: k.name, fingerprint: k.fingerprint, type: k.publicKey.split(' ', 1)[0], admin: k.admin, apps: k.apps, addedAt: k.addedAt, lastUsed: k.lastUsed,
    })));
    return 0;
  }
  if (keys.length === 0) {
    io.stdout('No keys yet: add one with platformx keys:add NAME --app APP < ~/.ssh/id_ed25519.pub\n');
    return 0;
  }
  io.stdout(table([
    ['NAME', 'FINGERPRINT', 'SCOPE', 'ADDED', 'LAST USED'],
    ...keys.map((k) => [k.name, k.fingerprint, scopeOf(k), k.addedAt, k.lastUsed ?? 'never']),
  ]));
  return 0;
}

/** keys:remove NAME */
export function keysRemove(store: StateStore, args: ParsedArgs, io: CommandIO): number {
  const name = checkKeyName(args.positional[0]);
  store.update((draft) => {
    findKey(draft, name);
    draft.keys = draft.keys.filter((k) => k.name !== name);
  });
  io.stdout(`Removed key ${name}: its next connection is refused\n`);
  return 0;
}

/** keys:grant NAME APP */
export function keysGrant(store: StateStore, args: ParsedArgs, io: CommandIO): number {
  const name = checkKeyName(args.positional[0]);
  const app = args.positional[1];
  const added = store.update((draft) => {
    const key = findKey(draft, name);
    checkAppExists(draft, app!);
    if (key.admin) throw new UserError(`key '${name}' is an admin key: it already reaches every app`);
    if (key.apps.includes(app!)) return false;
    key.apps.push(app!);
    return true;
  });
  io.stdout(added ? `Granted ${app} to key ${name}\n` : `Key ${name} already reaches ${app}\n`);
  return 0;
}

/** keys:revoke NAME APP */
export function keysRevoke(store: StateStore, args: ParsedArgs, io: CommandIO): number {
  const name = checkKeyName(args.positional[0]);
  const app = checkAppName(args.positional[1]);
  store.update((draft) => {
    const key = findKey(draft, name);
    if (key.admin) throw new UserError(`key '${name}' is an admin key and reaches every app: keys:remove it and add an app-scoped key instead`);
    if (!key.apps.includes(app)) throw new UserError(`key '${name}' has no access to '${app}': see 'platformx keys:list'`);
    key.apps = key.apps.filter((a) => a !== app);
  });
  io.stdout(`Revoked ${app} from key ${name}\n`);
  return 0;
}

/** The keys:* commands, ready for the command table. Managing keys is for admins and the local CLI only. */
export function keyCommands(store: StateStore): CommandDef[] {
  return [
    {
      name: 'keys:add', usage: 'keys:add NAME (--app APP … | --admin) [--file KEY.pub]', summary: 'add an SSH deploy key (public key on stdin or --file)',
      access: 'admin', minArgs: 1, maxArgs: 1, flags: { app: 'list', admin: 'bool', file: 'string' },
      run: ({ args, io }) => keysAdd(store, args, io),
    },
    {
      name: 'keys:list', usage: 'keys:list [--json]', summary: 'list SSH keys with fingerprint, scope and last use',
      access: 'admin', maxArgs: 0, flags: { json: 'bool' },
      run: ({ args, io }) => keysList(store, args, io),
    },
    {
      name: 'keys:remove', usage: 'keys:remove NAME', summary: 'remove an SSH key', access: 'admin', minArgs: 1, maxArgs: 1,
      run: ({ args, io }) => keysRemove(store, args, io),
    },
    {
      name: 'keys:grant', usage: 'keys:grant NAME APP', summary: 'let an SSH key reach one more app', access: 'admin', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => keysGrant(store, args, io),
    },
    {
      name: 'keys:revoke', usage: 'keys:revoke NAME APP', summary: 'take an app away from an SSH key', access: 'admin', minArgs: 2, maxArgs: 2,
      run: ({ args, io }) => keysRevoke(store, args, io),
    },
  ];
}
