import fs from 'node:fs';
import path from 'node:path';
import { descendants } from '../apprunner/process-tree.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** USER_HZ: the unit of utime/stime in /proc/PID/stat, 100 on every Linux ABI Node runs on. */
const TICKS_PER_SECOND = 100;

export interface ProcessUsage {
  /** The process's memory cgroup usage when it has its own group (the sandbox), else its tree's RSS. */
  memoryBytes: number | null;
  /** CPU seconds used by the process and everything below it that still runs. */
  cpuSeconds: number | null;
}

/** The cgroup v1 path of pid in controller, from /proc/PID/cgroup ("4:memory:/a/b"). */
function cgroupOf(pid: number | 'self', controller: string): string | null {
  try {
    for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
      const [, controllers, where] = line.split(':');
      if (controllers?.split(',').includes(controller)) return where ?? null;
    }
  } catch {
    /* gone, or no /proc */
  }
  return null;
}

function readNumber(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** utime + stime of one process, in ticks; VmRSS in bytes. */
function procFigures(pid: number): { ticks: number; rss: number } | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[11]) + Number(rest[12]);
    const rssLine = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { ticks, rss: rssLine ? Number(rssLine[1]) * 1024 : 0 };
  } catch {
    return null;
  }
}

/**
 * Reads what one app process uses, without changing anything: the memory cgroup
 * the sandbox put it in (the figure its limit applies to), and the CPU time of
 * its process tree from /proc.
 */
export function readProcessUsage(pid: number): ProcessUsage {
  const tree = [pid, ...descendants(pid).map((p) => p.pid)].map(procFigures).filter((f) => f !== null);
  if (tree.length === 0) return { memoryBytes: null, cpuSeconds: null };
  const own = cgroupOf(pid, 'memory');
  const serverGroup = cgroupOf('self', 'memory');
  const groupBytes = own !== null && own !== serverGroup
    ? readNumber(path.join(CGROUP_ROOT, 'memory', own, 'memory.usage_in_bytes'))
    : null;
  return {
    memoryBytes: groupBytes ?? tree.reduce((sum, f) => sum + f.rss, 0),
    cpuSeconds: tree.reduce((sum, f) => sum + f.ticks, 0) / TICKS_PER_SECOND,
  };
}

export interface SampledUsage extends ProcessUsage {
  /** Share of one core since the previous sample (or since the process started), 0-100 per core. */
  cpuPercent: number | null;
}

/**
 * Reads process usage at most once a second per pid (a page and a scrape at the
 * same moment share one read) and turns CPU seconds into a rate.
 */
export class UsageSampler {
  private readonly last = new Map<number, { at: number; startedAt: number; usage: SampledUsage; cpu: number }>();

  constructor(private readonly read: (pid: number) => ProcessUsage = readProcessUsage, private readonly clock: () => number = Date.now) {}

  sample(pid: number, startedAt: number): SampledUsage {
    const now = this.clock();
    // The same pid with another start time is another process.
    const prev = this.last.get(pid)?.startedAt === startedAt ? this.last.get(pid) : undefined;
    if (prev && now - prev.at < 1000) return prev.usage;
    const u = this.read(pid);
    // Since the last sample when there is one from a moment ago, else over the process's life.
    const [fromAt, fromCpu] = prev ? [prev.at, prev.cpu] : [startedAt, 0];
    const cpuPercent = u.cpuSeconds === null || now <= fromAt ? null : Math.max(0, ((u.cpuSeconds - fromCpu) / ((now - fromAt) / 1000)) * 100);
    const usage: SampledUsage = { ...u, cpuPercent };
    this.last.set(pid, { at: now, startedAt, usage, cpu: u.cpuSeconds ?? 0 });
    for (const [p, s] of this.last) if (now - s.at > 10 * 60_000) this.last.delete(p);
    return usage;
  }
}
