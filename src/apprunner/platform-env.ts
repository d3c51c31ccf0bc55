// The variables the platform itself sets in every app process or build step. A
// config var of the same name would be overwritten (or would change what the
// platform promised the app), so config:set refuses them, as it refuses the
// dynamic loader's LD_* variables (they only ever reach the app's own processes,
// as its own user, but no app needs them set by the platform).

/** Set per process by the platform; a config var cannot change them. */
export const PLATFORM_ENV_NAMES: readonly string[] = Object.freeze([
  'PORT', // the port a web process must listen on
  'DYNO', // web.1, worker.2…
  'HOME', // /app in the sandbox, the release folder without one
  'PWD', // the working directory, the same folder
  'NODE_ENV', // production; development during a build that has a build script
  'npm_config_cache', // the app's own npm cache during builds
  'npm_config_update_notifier',
]);

const NAMES = new Set(PLATFORM_ENV_NAMES);

export function isPlatformEnvName(name: string): boolean {
  return NAMES.has(name);
}

/** Why config:set refuses `name`, in one line, or null when it may be set. */
export function refusedEnvName(name: string): string | null {
  if (isPlatformEnvName(name)) return `config key '${name}' is reserved: the platform sets it for each process`;
  if (/^LD_/.test(name)) return `config key '${name}' is refused: LD_* variables steer the dynamic loader of every program the app starts`;
  return null;
}
