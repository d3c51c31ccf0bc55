/** Crash restarts wait 1 s, 2 s, 4 s … up to 60 s; 60 s of healthy running resets the count. */
export const MAX_RESTART_DELAY_MS = 60_000;
export const HEALTHY_RESET_MS = 60_000;

export function restartDelayMs(previousRestarts: number): number {
  return Math.min(1000 * 2 ** previousRestarts, MAX_RESTART_DELAY_MS);
}
