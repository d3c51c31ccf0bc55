// The server (root when sandboxed) reads and writes a few files in folders an app
// controls: package.json, Procfile, app.json and lockfiles of a checkout (the pusher
// chose them, symlinks included), and node_modules after a build the app ran. A plain
// fs.readFileSync follows `package.json -> /etc/shadow` (and prints it in a parse
// error), blocks the whole server on a FIFO, or reads /dev/zero until memory runs
// out; a plain write follows a planted symlink onto any file of the host. These
// helpers touch only regular files reached without a symlink, and read a bounded size.
//
// No app process can run in the folder meanwhile (builds and releases run in their own
// sandboxes, which end before the server looks), so checking each parent with lstat and
// opening the last part with O_NOFOLLOW leaves no window that matters.
import fs from 'node:fs';
import path from 'node:path';

/** A file the platform will not read or write, with a one-line reason for the deploy output. */
export class AppFileError extends Error {}

const { O_RDONLY, O_WRONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_NOCTTY } = fs.constants;

/** `node_modules/.x` → ['node_modules', '.x']; refuses absolute paths and `..`. */
function parts(rel: string): string[] {
  const p = rel.split('/');
  if (path.isAbsolute(rel) || p.some((x) => x === '' || x === '.' || x === '..')) throw new Error(`not a plain relative path: ${rel}`);
  return p;
}

/** Every folder between dir and the file must be a real folder, not a symlink. False when one is missing. */
function parentsAreFolders(dir: string, p: string[], rel: string): boolean {
  let at = dir;
  for (const part of p.slice(0, -1)) {
    at = path.join(at, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    if (!st.isDirectory()) throw new AppFileError(`${rel}: ${path.relative(dir, at)} is not a folder (symbolic links are not followed)`);
  }
  return true;
}

function openRefusingLinks(file: string, flags: number, rel: string, mode?: number): number | null {
  try {
    return fs.openSync(file, flags | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY, mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new AppFileError(`${rel} is a symbolic link: the platform reads only regular files of the app`);
    // A FIFO with no reader, opened for writing without blocking.
    if (code === 'ENXIO') throw new AppFileError(`${rel} is not a regular file`);
    throw err;
  }
}

/**
 * The content of `rel` below the app folder `dir`, or null when there is none.
 * Throws AppFileError for a symlink, a FIFO, a device or anything over maxBytes.
 */
export function readAppFile(dir: string, rel: string, maxBytes = 1024 * 1024): Buffer | null {
  const p = parts(rel);
  if (!parentsAreFolders(dir, p, rel)) return null;
  const fd = openRefusingLinks(path.join(dir, ...p), O_RDONLY, rel);
  if (fd === null) return null;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new AppFileError(`${rel} is not a regular file`);
    if (st.size > maxBytes) throw new AppFileError(`${rel} is larger than ${maxBytes} bytes`);
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (let r; n < buf.length && (r = fs.readSync(fd, buf, n, buf.length - n, null)) > 0;) n += r;
    if (n > maxBytes) throw new AppFileError(`${rel} is larger than ${maxBytes} bytes`);
    return buf.subarray(0, n);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * True when anything is at `rel` below the app folder: a file, a folder or a symlink,
 * the link itself (never followed, so a link to a host path tells nothing about that
 * path). Throws AppFileError when rel leaves the folder (absolute, `..`) or goes through a link.
 */
export function appPathExists(dir: string, rel: string): boolean {
  const clean = path.posix.normalize(rel).replace(/\/+$/, '');
  if (path.posix.isAbsolute(clean) || clean === '..' || clean.startsWith('../')) throw new AppFileError(`${rel} is outside the app's folder`);
  if (clean === '.' || clean === '') return false;
  const p = clean.split('/');
  if (!parentsAreFolders(dir, p, rel)) return false;
  try {
    fs.lstatSync(path.join(dir, ...p));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/** readAppFile as UTF-8 text. */
export function readAppText(dir: string, rel: string, maxBytes?: number): string | null {
  return readAppFile(dir, rel, maxBytes)?.toString('utf8') ?? null;
}

/**
 * Writes `rel` below the app folder (creating or replacing a regular file) without
 * following a symlink the app planted. False when a parent folder is missing.
 */
export function writeAppFile(dir: string, rel: string, data: string | Buffer, mode = 0o644): boolean {
  const p = parts(rel);
  if (!parentsAreFolders(dir, p, rel)) return false;
  const fd = openRefusingLinks(path.join(dir, ...p), O_WRONLY | O_CREAT, rel, mode);
  if (fd === null) return false;
  try {
    if (!fs.fstatSync(fd).isFile()) throw new AppFileError(`${rel} is not a regular file`);
    fs.ftruncateSync(fd, 0);
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    for (let n = 0; n < buf.length;) n += fs.writeSync(fd, buf, n, buf.length - n, n);
    return true;
  } finally {
    fs.closeSync(fd);
  }
}
