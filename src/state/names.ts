// Validation of the names users give us. Every check returns a one-line error
// that says what was wrong and what to do, so the CLI can print it as is.

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

const APP_NAME = /^[a-z][a-z0-9-]{0,62}$/;

export function checkAppName(name: unknown): string {
  if (typeof name !== 'string' || !APP_NAME.test(name)) {
    throw new UserError(
      `invalid app name '${String(name)}': use a lowercase DNS label (a letter, then up to 62 letters, digits or '-')`,
    );
  }
  return name;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower-cases and validates a hostname; a trailing dot and port are not allowed. */
export function normalizeHostname(host: unknown): string {
  if (typeof host !== 'string') throw new UserError('hostname missing: give a hostname like www.example.com');
  const h = host.trim().toLowerCase();
  if (h.length === 0 || h.length > 253 || !h.split('.').every((l) => LABEL.test(l))) {
    throw new UserError(`invalid hostname '${host}': use letters, digits, '-' and dots, like www.example.com`);
  }
  return h;
}

const CONFIG_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function checkConfigKey(key: string): string {
  if (!CONFIG_KEY.test(key)) {
    throw new UserError(`invalid config key '${key}': use letters, digits and '_', not starting with a digit`);
  }
  if (key === 'PORT') throw new UserError(`config key 'PORT' is reserved: the platform sets it for each process`);
  return key;
}
