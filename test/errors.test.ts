// Errors carry named codes: callers branch on the code, never on the message.
import { describe, expect, it } from 'vitest';
import { AppStartError, ErrorCode, UserError } from '../src/errors.js';
import { checkAppName, checkHostnameClaim } from '../src/state/names.js';

function thrown(fn: () => unknown): UserError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(UserError);
    return err as UserError;
  }
  throw new Error('nothing was thrown');
}

describe('error codes', () => {
  it('a bad name is BAD_INPUT, a hostname of another app CONFLICT, a failed start APP_START_FAILED', () => {
    expect(thrown(() => checkAppName('Bad_Name')).code).toBe(ErrorCode.BadInput);
    const claim = { baseDomain: 'localhost', machineNames: new Set<string>(), others: [{ app: 'a', hosts: ['www.example.com'] }], canSee: () => true };
    const taken = thrown(() => checkHostnameClaim('www.example.com', 'b', claim));
    expect(taken.code).toBe(ErrorCode.Conflict);
    expect(thrown(() => checkHostnameClaim('api.www.example.com', 'b', claim)).code).toBe(ErrorCode.Conflict);
    expect(thrown(() => checkHostnameClaim('127.0.0.1', 'b', claim)).code).toBe(ErrorCode.BadInput);
    const start = new AppStartError('the process exited with code 1 before listening on PORT 5000');
    expect([start instanceof UserError, start.code]).toEqual([true, 'APP_START_FAILED']);
  });
});
