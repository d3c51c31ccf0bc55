import { createHash } from 'node:crypto';

/** A short name for a data folder, so two servers on one machine keep their cgroups and nftables rules apart. */
export function dataScope(dataDir: string): string {
  return createHash('sha256').update(dataDir).digest('hex').slice(0, 8);
}
