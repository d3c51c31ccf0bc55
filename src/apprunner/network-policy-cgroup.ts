import fs from 'node:fs';
import path from 'node:path';

/** nft resolves `socket cgroupv2` paths below this folder. */
const NFT_CGROUP_ROOT = '/sys/fs/cgroup';

/** The cgroup v2 group a server's app processes join, so its nftables rules can tell their sockets apart. */
export interface NetworkCgroup {
  dir: string;
  /** The file a process writes its pid to, to join. */
  procs: string;
  /** As nft's `socket cgroupv2 level N "path"` names it. */
  nftPath: string;
  level: number;
}

/** Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` or, beside v1, `/sys/fs/cgroup/unified`). */
function cgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    const [fields, fsType] = line.split(' - ');
    if (fsType?.startsWith('cgroup2 ')) return fields!.split(' ')[4] ?? null;
  }
  return null;
}

/**
 * Makes (or finds, after a data plane was killed) the group `name` below this
 * process's own cgroup v2 group; it holds app processes only. Throws with a
 * reason when there is no cgroup v2 hierarchy nft can name.
 */
export function networkCgroup(name: string): NetworkCgroup {
  const mount = cgroup2Mount(fs.readFileSync('/proc/self/mountinfo', 'utf8'));
  if (!mount) throw new Error('there is no cgroup v2 hierarchy (nftables tells apps apart by their cgroup v2 group)');
  if (mount !== NFT_CGROUP_ROOT && !mount.startsWith(NFT_CGROUP_ROOT + '/')) {
    throw new Error(`cgroup v2 is mounted at ${mount}, not below ${NFT_CGROUP_ROOT} where nft looks`);
  }
  const own = /^0::(.*)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
  const dir = path.join(mount, own, name);
  const nftPath = path.relative(NFT_CGROUP_ROOT, dir);
  // The path goes into the rules between quotes: only plain characters.
  if (!/^[\w.@:/-]+$/.test(nftPath)) throw new Error(`the server's cgroup path '${nftPath}' has characters nft rules cannot quote`);
  fs.mkdirSync(dir, { recursive: true });
  return { dir, procs: path.join(dir, 'cgroup.procs'), nftPath, level: own.split('/').filter(Boolean).length + 1 };
}
