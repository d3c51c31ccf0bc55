import path from 'node:path';

export interface BubblewrapMounts {
  /** Host folder mounted read-write at /app: the release (or build) folder. */
  releaseDir: string;
  /** Further host folders mounted read-write at the same path (a build's npm cache). */
  writable: readonly string[];
  /** Further host folders mounted read-only at the same path (the previous build, for a node_modules copy). */
  readOnly?: readonly string[];
  uid: number;
  /** Inherited fds bwrap reads the sandbox's /etc/passwd and /etc/group from (see sandboxIdentity). */
  identityFds?: { passwd: number; group: number };
  /** Inherited fd bwrap reads a seccomp program from (see sandbox-seccomp.ts). */
  seccompFd?: number;
  /** Inherited fd bwrap's monitor keeps (and writes its status to) until it exits (see death-signal.ts). */
  statusFd?: number;
  /** The app's Node runtime (DATA/runtimes/<version>): mounted read-only at the same path. */
  nodeDir?: string;
}

/**
 * The sandbox's own /etc/passwd and /etc/group: root, the app's user (named `app`,
 * home /app) and nobody. Tools that look their user up (whoami, ssh, os.userInfo)
 * work, and the host's list of users stays hidden.
 */
export function sandboxIdentity(uid: number): { passwd: string; group: string } {
  return {
    passwd: `root:x:0:0:root:/root:/usr/sbin/nologin\napp:x:${uid}:${uid}:app:/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n`,
    group: `root:x:0:\napp:x:${uid}:\nnogroup:x:65534:\n`,
  };
}

/** Where node lives, if not under /usr (an nvm or /opt install): mounted read-only too. */
function nodePrefix(): string | null {
  const prefix = path.dirname(path.dirname(process.execPath));
  return prefix === '/usr' || prefix.startsWith('/usr/') ? null : prefix;
}

/**
 * The bubblewrap arguments that confine one app process or build step: the
 * system read-only, the app's own folder at /app, a private /tmp, its own pid,
 * IPC and UTS namespaces (it cannot see or signal anything outside), nothing of
 * the data folder, /root or other apps. The network stays the host's so the app
 * can listen on its port. bwrap runs as root to set this up; setpriv then drops
 * to the app's uid with no capabilities and no way to gain privileges.
 */
export function bubblewrapArgs(m: BubblewrapMounts): string[] {
  const args = [
    '--die-with-parent', '--new-session',
    '--unshare-pid', '--unshare-ipc', '--unshare-uts', '--unshare-cgroup-try',
    '--hostname', 'app',
    '--ro-bind', '/usr', '/usr',
    '--symlink', 'usr/bin', '/bin', '--symlink', 'usr/sbin', '/sbin',
    '--symlink', 'usr/lib', '/lib', '--symlink', 'usr/lib64', '/lib64',
    // /etc holds DNS, TLS roots and passwd; its secrets (shadow, ssh keys) are root-only files.
    '--ro-bind', '/etc', '/etc',
    '--proc', '/proc', '--dev', '/dev',
    // A fresh tmpfs is root's 0755 when bwrap runs as root: sticky and world-writable
    // like the host's, or the app's user could not write its own /tmp.
    '--perms', '1777', '--tmpfs', '/tmp', '--perms', '1777', '--tmpfs', '/dev/shm',
    '--bind', m.releaseDir, '/app',
  ];
  if (m.identityFds) {
    args.push('--perms', '0644', '--ro-bind-data', String(m.identityFds.passwd), '/etc/passwd');
    args.push('--perms', '0644', '--ro-bind-data', String(m.identityFds.group), '/etc/group');
  }
  const prefix = nodePrefix();
  // --dir first, as for the writable folders below: the app's user must cross its parents.
  if (prefix) args.push('--dir', prefix, '--ro-bind', prefix, prefix);
  if (m.nodeDir) args.push('--dir', m.nodeDir, '--ro-bind', m.nodeDir, m.nodeDir);
  // --dir first: parents bwrap makes on its own for a bind are 0700 root, which the app's user cannot cross.
  for (const dir of m.writable) args.push('--dir', dir, '--bind', dir, dir);
  for (const dir of m.readOnly ?? []) args.push('--dir', dir, '--ro-bind', dir, dir);
  if (m.seccompFd !== undefined) args.push('--seccomp', String(m.seccompFd));
  if (m.statusFd !== undefined) args.push('--json-status-fd', String(m.statusFd));
  args.push('--chdir', '/app');
  return args;
}

/** setpriv: become the app's user, drop every capability, block setuid binaries. */
export function dropPrivilegesArgs(uid: number): string[] {
  return ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs'];
}
