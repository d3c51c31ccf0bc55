// When to renew a certificate and how long to wait after a failed attempt.

const MINUTE = 60_000;
const DAY = 86_400_000;

/** Renewal checks run at least this often, besides the timers for what is due. */
export const CHECK_EVERY_MS = 12 * 60 * MINUTE;

/**
 * When a certificate is due: once 30 days or a third of its lifetime remain,
 * whichever comes first (so 45-day certificates renew with 30 days left, as
 * 90-day ones do), but never before a third of its lifetime has passed: a
 * short-lived certificate is not renewed the moment it arrives.
 */
export function renewAt(notBefore: Date, notAfter: Date): number {
  const from = notBefore.getTime();
  const to = notAfter.getTime();
  const lifetime = to - from;
  const remaining = Math.max(lifetime / 3, Math.min(30 * DAY, (2 * lifetime) / 3));
  return to - remaining;
}

/** Wait after the nth failure in a row (1, 2, …): 5 minutes, doubling, at most a day. */
export function backoffMs(failures: number): number {
  return Math.min(DAY, 5 * MINUTE * 2 ** Math.max(0, failures - 1));
}

/** A CA's rate-limit answer: its Retry-After when it gave one, never less than an hour nor the backoff. */
export function rateLimitBackoffMs(failures: number, retryAfterMs: number | null): number {
  return Math.max(60 * MINUTE, backoffMs(failures), retryAfterMs ?? 0);
}
