// Downloads a package tarball, checks it against the sha512 the registry lists
// for it (dist.integrity, as npm does), and unpacks it. Nothing is unpacked
// before the whole file matched.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { execa } from 'execa';
import { helperFailure } from '../helper-failure.js';
import { fetchFailure, type PackageVersion } from './npm-registry.js';

const DOWNLOAD_TIMEOUT_MS = 15 * 60_000;
/** Unpacking a Node or npm tarball takes seconds; a tar still at it after this is stuck. */
const UNPACK_TIMEOUT_MS = 5 * 60_000;
/** A Node tarball is ~50 MB; anything this large is not one. */
const MAX_BYTES = 512 * 1024 * 1024;

export type TarballErrorCode = 'no-integrity' | 'integrity-mismatch' | 'download-failed' | 'unpack-failed';

export class TarballError extends Error {
  constructor(message: string, readonly code: TarballErrorCode) {
    super(message);
  }
}

/** The base64 sha512 digest of an ssri string ("sha512-… sha1-…"), or null. */
export function sha512Of(integrity: string | undefined): string | null {
  for (const part of (integrity ?? '').trim().split(/\s+/)) {
    if (part.startsWith('sha512-')) return part.slice(7).split('?')[0] ?? null;
  }
  return null;
}

/** Fetches `pkg`'s tarball into `file`; resolves to its size once its sha512 matched. */
export async function downloadVerified(label: string, pkg: PackageVersion, file: string): Promise<number> {
  const expected = sha512Of(pkg.dist.integrity);
  if (!expected) throw new TarballError(`${label}: the registry lists no sha512 integrity for it, so it cannot be checked`, 'no-integrity');
  const url = new URL(pkg.dist.tarball);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new TarballError(`${label}: tarball URL is not http(s)`, 'download-failed');
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
  } catch (err) {
    throw new TarballError(`${label}: download failed (${fetchFailure(err)})`, 'download-failed');
  }
  if (!res.ok || !res.body) throw new TarballError(`${label}: download answered ${res.status}`, 'download-failed');
  const hash = crypto.createHash('sha512');
  let bytes = 0;
  const measure = new Transform({
    transform(chunk: Buffer, _enc, done) {
      bytes += chunk.length;
      if (bytes > MAX_BYTES) return done(new Error(`larger than ${MAX_BYTES} bytes`));
      hash.update(chunk);
      done(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as WebReadableStream), measure, fs.createWriteStream(file, { mode: 0o600 }));
  } catch (err) {
    throw new TarballError(`${label}: download failed (${fetchFailure(err)})`, 'download-failed');
  }
  const actual = hash.digest('base64');
  if (actual !== expected) {
    throw new TarballError(`${label}: the download does not match the registry's sha512 integrity (got sha512-${actual.slice(0, 16)}…): not installed`, 'integrity-mismatch');
  }
  return bytes;
}

/** Unpacks an npm tarball's package/ folder into dir, owned by whoever unpacks it. */
export async function unpack(label: string, file: string, dir: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  // GNU tar refuses members with '..' and strips leading '/'; --no-same-owner keeps root from taking the archive's uids.
  const tar = await execa('tar', ['-x', '-z', '-f', file, '-C', dir, '--strip-components=1', '--no-same-owner'], {
    stdin: 'ignore',
    stdout: 'ignore',
    reject: false,
    timeout: UNPACK_TIMEOUT_MS,
  });
  if (tar.failed) {
    throw new TarballError(`${label}: could not unpack (${helperFailure(tar)})`, 'unpack-failed');
  }
}
