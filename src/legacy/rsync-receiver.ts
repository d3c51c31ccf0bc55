// Runs the real `rsync --server` receiver for an upload accepted by
// parseRsyncUpload, wired to an SSH exec channel. No shell: an argv array.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Duplex, Writable } from 'node:stream';
import { canReach, type Caller } from '../control/types.js';
import type { AppRecord } from '../state/types.js';
import { parseRsyncUpload, RsyncRefused } from './rsync-command.js';
import type { UploadFolders } from './upload-folders.js';

/** An SSH exec channel as ssh2 gives it: read = the client's stdin, write = stdout, plus stderr. */
export interface ExecChannel extends Duplex {
  stderr: Writable;
}

export interface RsyncUploadDeps {
  /** The app registry (Maestro.apps): only `get` is used, which throws for unknown apps. */
  apps: { get(name: string): AppRecord };
  uploads: UploadFolders;
  /** The rsync program; 'rsync' (found on PATH) unless a test or an odd install says otherwise. */
  rsyncBinary?: string;
  log?: (line: string) => void;
}

const RECEIVER_PATH = '/usr/local/bin:/usr/bin:/bin';

/** The program's full path (searched on the receiver's PATH), or null when it is not installed. */
export function findProgram(name: string): string | null {
  const candidates = name.includes('/') ? [name] : RECEIVER_PATH.split(':').map((d) => path.join(d, name));
  for (const c of candidates) {
    try {
      fs.accessSync(c, fs.constants.X_OK);
      if (fs.statSync(c).isFile()) return c;
    } catch {
      // not here
    }
  }
  return null;
}
export const RSYNC_MISSING = 'rsync is not installed on this server: ask its administrator to install it (apt-get install rsync); git push still works';

function say(channel: ExecChannel, line: string): void {
  if (!channel.stderr.destroyed && channel.stderr.writable) channel.stderr.write(`${line}\n`);
}

/**
 * The SSH server's onRsync hook: checks the request and the key's scope, then
 * receives the upload into the app's upload folder. Resolves to the exit status
 * for the channel (the caller sends it and closes the channel); never throws.
 */
export async function handleRsyncUpload(argv: readonly string[], caller: Caller, channel: ExecChannel, deps: RsyncUploadDeps): Promise<number> {
  let app: AppRecord;
  let runArgv: string[];
  try {
    const upload = parseRsyncUpload(argv, (name) => deps.uploads.dir(name));
    // An app outside the key's scope answers exactly like one that does not exist.
    if (!canReach(caller, upload.app)) throw new RsyncRefused(`app '${upload.app}' does not exist`);
    try {
      app = deps.apps.get(upload.app);
    } catch {
      throw new RsyncRefused(`app '${upload.app}' does not exist`);
    }
    runArgv = upload.argv;
  } catch (err) {
    const message = err instanceof RsyncRefused ? err.message : `rsync refused: ${(err as Error).message}`;
    deps.log?.(`rsync from key '${caller.name}': ${message}`);
    say(channel, message);
    return 1;
  }
  const dir = deps.uploads.dir(app.name);
  return deps.uploads.exclusive(app.name, async () => {
    try {
      deps.uploads.ensure(app.name, app.uid);
    } catch (err) {
      say(channel, `rsync refused: the upload folder of '${app.name}' cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); tell the server's administrator`);
      return 1;
    }
    deps.log?.(`rsync upload to '${app.name}' by key '${caller.name}'`);
    return runRsyncReceiver({ argv: runArgv, dir, uid: app.uid, binary: deps.rsyncBinary ?? 'rsync', log: deps.log }, channel);
  }, () => say(channel, `another upload or deploy of '${app.name}' is reading its upload folder; waiting for it to finish`));
}

export interface ReceiverSpec {
  /** From parseRsyncUpload: argv[0] "rsync", last element `${dir}/`. */
  argv: readonly string[];
  dir: string;
  uid: number | null;
  binary: string;
  log?: (line: string) => void;
}

/** Where the upload folder appears inside the receiver's mount namespace. */
const INSIDE = '/run/upload';

/**
 * The command that runs the receiver. With bubblewrap the whole file system is
 * read-only to it except the upload folder, mounted at /run/upload (so the app's
 * user needs no access to the data folder above it), and it runs as the app's
 * user (setpriv) or, without one, as root with no capabilities. Without
 * bubblewrap (or root) it runs as the server's user in the folder itself,
 * confined by --munge-links alone. Files belong to whoever receives: owners sent by the
 * client are mapped to that user, since dropping -o/-g would break the protocol.
 */
export function receiverCommand(spec: ReceiverSpec, rsync: string): { cmd: string; args: string[] } {
  const bwrap = findProgram('bwrap');
  const setpriv = findProgram('setpriv');
  const root = process.getuid?.() === 0;
  const asApp = spec.uid !== null && root && bwrap !== null && setpriv !== null;
  if (spec.uid !== null && root && !asApp) spec.log?.('rsync: bubblewrap or setpriv missing: the receiver runs as the server user, not the app user');
  const uid = asApp ? spec.uid! : (process.getuid?.() ?? 0);
  const gid = asApp ? spec.uid! : (process.getgid?.() ?? 0);
  const options = [...spec.argv.slice(1, -2), `--usermap=*:${uid}`, `--groupmap=*:${gid}`, '.'];
  // Not root: bubblewrap would need user namespaces, and the receiver is the server's user anyway.
  if (!bwrap || !root) return { cmd: rsync, args: [...options, `${spec.dir}/`] };
  const sandbox = [
    '--ro-bind', '/', '/', '--dev', '/dev', '--tmpfs', '/run', '--bind', spec.dir, INSIDE, '--chdir', INSIDE,
    '--die-with-parent', '--unshare-ipc', '--unshare-net', '--unshare-uts',
  ];
  if (asApp) {
    return { cmd: bwrap, args: [...sandbox, '--', setpriv!, '--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--', rsync, ...options, `${INSIDE}/`] };
  }
  return { cmd: bwrap, args: [...sandbox, '--cap-drop', 'ALL', '--', rsync, ...options, `${INSIDE}/`] };
}

/** Spawns the receiver with the channel as its stdio and resolves to its exit status. */
export function runRsyncReceiver(spec: ReceiverSpec, channel: ExecChannel): Promise<number> {
  if (spec.argv[spec.argv.length - 1] !== `${spec.dir}/`) throw new Error('rsync receiver: destination is not the upload folder');
  const program = findProgram(spec.binary);
  if (!program) {
    say(channel, RSYNC_MISSING);
    return Promise.resolve(1);
  }
  const { cmd, args } = receiverCommand(spec, program);

  return new Promise((resolve) => {
    let settled = false;
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      channel.unpipe(child.stdin);
      // -a carries the bundle folder's own mode over to the upload folder; keep it private.
      try {
        fs.chmodSync(spec.dir, 0o700);
      } catch {
        // gone (app destroyed meanwhile)
      }
      channel.off('close', onChannelClose);
      resolve(code);
    };
    const child = spawn(cmd, args, {
      cwd: spec.dir,
      env: { PATH: RECEIVER_PATH, LANG: 'C.UTF-8' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.on('error', (err: NodeJS.ErrnoException) => {
      say(channel, err.code === 'ENOENT' ? RSYNC_MISSING : `rsync could not start on the server: ${err.message}`);
      finish(1);
    });
    child.stdin.on('error', () => {}); // EPIPE when the receiver exits first
    channel.pipe(child.stdin);
    child.stdout.pipe(channel, { end: false });
    child.stderr.pipe(channel.stderr, { end: false });
    const onChannelClose = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    channel.on('close', onChannelClose);
    child.on('close', (code, signal) => {
      finish(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15));
    });
  });
}
