// Runs the real `rsync --server` receiver for an upload accepted by
// parseRsyncUpload, wired to an SSH exec channel. No shell: an argv array.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { findProgram, HELPER_ENV } from '../apprunner/system-programs.js';
import { canReach, type Caller } from '../control/types.js';
import type { AppRecord } from '../state/types.js';
import { parseRsyncUpload, RsyncRefused } from './rsync-command.js';
import type { UploadFolders } from './upload-folders.js';

/** An exec request with its streams; the same shape as the SSH server's SshExecContext. */
export interface RsyncExecContext {
  /** The exec string split into words: ['rsync', '--server', …]. */
  argv: readonly string[];
  caller: Caller;
  /** The client's data (the SSH channel). */
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Aborted when the client goes away: the receiver is stopped. */
  signal?: AbortSignal;
}

type ExecStreams = Pick<RsyncExecContext, 'stdin' | 'stdout' | 'stderr' | 'signal'>;

export interface RsyncUploadDeps {
  /** The app registry (Maestro.apps): only `get` is used, which throws for unknown apps. */
  apps: { get(name: string): AppRecord };
  uploads: UploadFolders;
  /** The rsync program; 'rsync' (found on PATH) unless a test or an odd install says otherwise. */
  rsyncBinary?: string;
  log?: (line: string) => void;
}

export const RSYNC_MISSING = 'rsync is not installed on this server: ask its administrator to install it (apt-get install rsync); git push still works';

function say(io: ExecStreams, line: string): void {
  if (!io.stderr.destroyed && io.stderr.writable) io.stderr.write(`${line}\n`);
}

/** The SSH server's onRsync hook: `onRsync: rsyncUploadHandler({ apps: maestro.apps, uploads, log })`. */
export function rsyncUploadHandler(deps: RsyncUploadDeps): (ctx: RsyncExecContext) => Promise<number> {
  return (ctx) => handleRsyncUpload(ctx, deps);
}

/**
 * Checks an `rsync --server` request and the key's scope, then receives the
 * upload into the app's upload folder. Resolves to the exit status for the
 * client (the SSH server sends it and closes the channel); never throws.
 */
export async function handleRsyncUpload(ctx: RsyncExecContext, deps: RsyncUploadDeps): Promise<number> {
  try {
    return await receive(ctx, deps);
  } catch (err) {
    deps.log?.(`rsync: internal error: ${(err as Error).message}`);
    say(ctx, 'rsync refused: internal error on the server (see its log)');
    return 1;
  }
}

async function receive(io: RsyncExecContext, deps: RsyncUploadDeps): Promise<number> {
  const { argv, caller } = io;
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
    say(io, message);
    return 1;
  }
  const dir = deps.uploads.dir(app.name);
  return deps.uploads.exclusive(app.name, async () => {
    try {
      deps.uploads.ensure(app.name, app.uid);
    } catch (err) {
      say(io, `rsync refused: the upload folder of '${app.name}' cannot be created (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); tell the server's administrator`);
      return 1;
    }
    deps.log?.(`rsync upload to '${app.name}' by key '${caller.name}'`);
    return runRsyncReceiver({ argv: runArgv, dir, uid: app.uid, binary: deps.rsyncBinary ?? 'rsync', log: deps.log }, io);
  }, () => say(io, `another upload or deploy of '${app.name}' is reading its upload folder; waiting for it to finish`));
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
export function runRsyncReceiver(spec: ReceiverSpec, io: ExecStreams): Promise<number> {
  if (spec.argv[spec.argv.length - 1] !== `${spec.dir}/`) throw new Error('rsync receiver: destination is not the upload folder');
  const program = findProgram(spec.binary);
  if (!program) {
    say(io, RSYNC_MISSING);
    return Promise.resolve(1);
  }
  const { cmd, args } = receiverCommand(spec, program);

  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: spec.dir,
      // Never the app's config: bwrap and setpriv run as root (see system-programs.ts).
      env: HELPER_ENV,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stop = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    };
    let settled = false;
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      io.stdin.unpipe(child.stdin);
      io.signal?.removeEventListener('abort', stop);
      // -a carries the bundle folder's own mode over to the upload folder; keep it private.
      try {
        fs.chmodSync(spec.dir, 0o700);
      } catch {
        // gone (app destroyed meanwhile)
      }
      resolve(code);
    };
    child.on('error', (err: NodeJS.ErrnoException) => {
      say(io, err.code === 'ENOENT' ? RSYNC_MISSING : `rsync could not start on the server: ${err.message}`);
      finish(1);
    });
    child.stdin.on('error', () => {}); // EPIPE when the receiver exits first
    io.stdin.pipe(child.stdin);
    child.stdout.pipe(io.stdout, { end: false });
    child.stderr.pipe(io.stderr, { end: false });
    if (io.signal?.aborted) stop();
    else io.signal?.addEventListener('abort', stop, { once: true });
    child.on('close', (code, signal) => finish(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15)));
  });
}
