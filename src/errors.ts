// Errors the platform branches on, each with a named code (as kamal-proxy names
// its errors): callers and tests match the code, never the message. Every
// message is one line saying what was wrong and what to do, printed as is.

export const ErrorCode = {
  /** Something the user gave is wrong (a name, a flag, a value): exit 1, nothing changed. */
  BadInput: 'BAD_INPUT',
  /** The app (or the thing named) does not exist, or is outside the caller's scope: the same answer. */
  NotFound: 'NOT_FOUND',
  /** The name is taken or the thing is already there. */
  Conflict: 'CONFLICT',
  /** The caller's key may not do this (admin commands with an app key). */
  Forbidden: 'FORBIDDEN',
  /** The app's own processes failed to come up: its fault; what served before keeps serving. */
  AppStartFailed: 'APP_START_FAILED',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** An error the user can fix: the CLI prints `error: MESSAGE` and exits 1. */
export class UserError extends Error {
  constructor(message: string, readonly code: ErrorCode = ErrorCode.BadInput) {
    super(message);
    this.name = 'UserError';
  }
}

export class AppStartError extends UserError {
  constructor(message: string) {
    super(message, ErrorCode.AppStartFailed);
  }
}
