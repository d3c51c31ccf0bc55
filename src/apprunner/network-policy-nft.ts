import { spawn } from 'node:child_process';

/**
 * Runs an nft script (one transaction: all of it applies or none) from stdin;
 * the script is ours, built from validated numbers and addresses, and never
 * passes through a shell. Rejects with the line that says why.
 */
export function nft(script: string, options: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('nft', [...options, '-f', '-'], { stdio: ['pipe', 'pipe', 'pipe'], timeout: 10_000 });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', (e: NodeJS.ErrnoException) => {
      reject(new Error(e.code === 'ENOENT' ? 'nft is not installed (apt-get install nftables)' : `nft: ${e.message}`));
    });
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`nft failed: ${err.split('\n').find((l) => l.trim()) ?? `exit ${code}`}`));
    });
    child.stdin.on('error', () => { /* it exited early: its exit says why */ });
    child.stdin.end(script);
  });
}
