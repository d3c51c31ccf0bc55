// Copies an app's upload folder into a new release folder, so a later rsync
// never changes a release that was built or is serving.
import fs from 'node:fs/promises';
import path from 'node:path';

/** What rsync --munge-links puts in front of every symlink target. */
const MUNGE_PREFIX = '/rsyncd-munged/';

export interface SnapshotResult {
  files: number;
  /** Symlinks left out because they point outside the bundle, as "link -> target". */
  skippedLinks: string[];
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + path.sep);
}

/**
 * Copies src into dest (which must not exist): folders, regular files (with
 * their mtime, without set-id bits) and symlinks. rsync stored every symlink
 * munged; a link whose target stays inside the bundle is restored, so
 * node_modules/.bin and the like keep working; any other link, and devices,
 * fifos and sockets, are left out.
 */
export async function snapshotUpload(src: string, dest: string): Promise<SnapshotResult> {
  const result: SnapshotResult = { files: 0, skippedLinks: [] };
  const links: string[] = [];
  const root = path.resolve(dest);
  await fs.mkdir(root, { mode: 0o755 });

  const copyDir = async (from: string, to: string): Promise<void> => {
    for (const entry of await fs.readdir(from, { withFileTypes: true })) {
      const s = path.join(from, entry.name);
      const d = path.join(to, entry.name);
      if (entry.isDirectory()) {
        const st = await fs.lstat(s);
        await fs.mkdir(d, { mode: (st.mode & 0o777) | 0o700 });
        await copyDir(s, d);
      } else if (entry.isFile()) {
        const st = await fs.lstat(s);
        await fs.copyFile(s, d);
        await fs.chmod(d, st.mode & 0o777);
        await fs.utimes(d, st.atime, st.mtime);
        result.files++;
      } else if (entry.isSymbolicLink()) {
        const raw = await fs.readlink(s);
        const target = raw.startsWith(MUNGE_PREFIX) ? raw.slice(MUNGE_PREFIX.length) : raw;
        const rel = path.relative(root, d);
        if (path.isAbsolute(target) || !inside(root, path.resolve(path.dirname(d), target))) {
          result.skippedLinks.push(`${rel} -> ${target}`);
          continue;
        }
        await fs.symlink(target, d);
        links.push(d);
      }
      // Devices, fifos and sockets are never part of a bundle.
    }
  };
  await copyDir(path.resolve(src), root);

  // Lexically safe links can still combine (a -> .., b -> a/..) to leave the
  // folder: drop every link whose real resolution does, until none does.
  const realRoot = await fs.realpath(root);
  for (let changed = true; changed; ) {
    changed = false;
    for (const link of [...links]) {
      let real: string;
      try {
        real = await fs.realpath(link);
      } catch {
        continue; // dangling: resolves to nothing, and lexically inside
      }
      if (!inside(realRoot, real)) {
        result.skippedLinks.push(`${path.relative(root, link)} -> ${await fs.readlink(link)}`);
        await fs.unlink(link);
        links.splice(links.indexOf(link), 1);
        changed = true;
      }
    }
  }
  return result;
}
