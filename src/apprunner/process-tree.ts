import fs from 'node:fs';

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
}

function readProcs(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid …"; comm may hold spaces and parentheses.
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      out.push({ pid: Number(name), ppid, comm });
    } catch {
      /* exited while we looked */
    }
  }
  return out;
}

/** Every process below pid (not pid itself). */
export function descendants(pid: number): ProcInfo[] {
  const procs = readProcs();
  const found: ProcInfo[] = [];
  let frontier = [pid];
  while (frontier.length) {
    const next = procs.filter((p) => frontier.includes(p.ppid));
    found.push(...next);
    frontier = next.map((p) => p.pid);
  }
  return found;
}

let bootId: string | null = null;

/**
 * Who a pid is now: its start (the boot, and the clock tick since boot it started
 * at) and its process group; null when there is no such process. A reused pid
 * never has the start recorded for the process that had it before.
 */
export function processIdentity(pid: number): { start: string; pgid: number } | null {
  try {
    bootId ??= fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm) ": state, ppid, pgrp … starttime is the 22nd field.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { start: `${bootId}:${fields[19]}`, pgid: Number(fields[2]) };
  } catch {
    return null;
  }
}

export function signalQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* already gone */
  }
}
