import { spawn } from 'node:child_process';

/** Why nft failed: `missing` when it is not installed, so the warning can say what to install. */
export class NftError extends Error {
  constructor(readonly code: 'missing' | 'failed', message: string) {
    super(message);
  }
}

/**
 * Runs an nft script (one transaction: all of it applies or none) from stdin;
 * the script is ours, built from validated numbers and addresses, and never
 * passes through a shell.
 */
export function nft(script: string, args: string[] = ['-f', '-']): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(e.code === 'ENOENT' ? new NftError('missing', 'nft is not installed (apt-get install nftables)') : new NftError('failed', `nft: ${e.message}`));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new NftError('failed', `nft failed: ${err.split('\n').find((l) => l.trim()) ?? `exit ${code}`}`));
    });
    child.stdin.on('error', () => { /* it exited early: its exit says why */ });
    child.stdin.end(script);
  });
}
