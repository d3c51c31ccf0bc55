// Who listens on a loopback port: the kernel's socket tables (/proc/net/tcp and
// tcp6) give each listening socket's uid and inode, and /proc/PID/fd links name
// the socket inodes a process holds. Lets the health check tell the process the
// platform started from a co-tenant that bound its port first.
import fs from 'node:fs';
import { descendants } from '../apprunner/process-tree.js';

export interface Listener {
  /** Kernel socket inode. */
  inode: number;
  /** Owner uid of the socket (who created it). */
  uid: number;
}

const LISTEN = '0A';
/** Local addresses a connect to 127.0.0.1 reaches, as /proc/net prints them (32-bit words in host order). */
const REACHABLE = new Set([
  '00000000', '0100007F', // 0.0.0.0, 127.0.0.1
  '00000000000000000000000000000000', '0000000000000000FFFF00000100007F', // ::, ::ffff:127.0.0.1
]);

/** Every listening socket that would take a TCP connection to 127.0.0.1:port. */
export function loopbackListeners(port: number): Listener[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  const found: Listener[] = [];
  for (const [table, anyRemote] of [['/proc/net/tcp', '00000000:0000'], ['/proc/net/tcp6', `${'0'.repeat(32)}:0000`]] as const) {
    let text: string;
    try {
      text = fs.readFileSync(table, 'latin1');
    } catch (err) {
      // No IPv6 on this machine: no tcp6 table, and nothing listens there.
      if (table.endsWith('6') && (err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    // The tables hold every socket (thousands on a busy server): find the listening
    // ones on this port by their fixed text, and split only those lines.
    const needle = `:${hexPort} ${anyRemote} ${LISTEN} `;
    for (let at = text.indexOf(needle); at >= 0; at = text.indexOf(needle, at + needle.length)) {
      const line = text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\n', at) >>> 0);
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode …
      const f = line.trim().split(/\s+/);
      if (f.length < 10 || !REACHABLE.has(f[1]!.split(':')[0]!)) continue;
      found.push({ uid: Number(f[7]), inode: Number(f[9]) });
    }
  }
  return found;
}

/** Socket inodes held open by pid and every process below it. */
export function socketInodes(pid: number): Set<number> {
  const inodes = new Set<number>();
  for (const p of [pid, ...descendants(pid).map((d) => d.pid)]) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${p}/fd`);
    } catch {
      continue; // exited while we looked
    }
    for (const fd of fds) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${p}/fd/${fd}`));
        if (m) inodes.add(Number(m[1]));
      } catch {
        /* closed while we looked */
      }
    }
  }
  return inodes;
}

/** The listeners on port that do not belong to pid's process tree. */
export function foreignListeners(port: number, pid: number): Listener[] {
  const listeners = loopbackListeners(port);
  if (listeners.length === 0) return [];
  const ours = socketInodes(pid);
  return listeners.filter((l) => !ours.has(l.inode));
}
