// `platformx server` flags as an operator types them: the command line over the
// environment over the defaults, and one-line errors.
import { describe, expect, it } from 'vitest';
import { parseServerOptions } from '../src/server/server-options.js';

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseServerOptions(argv, env);

describe('parseServerOptions', () => {
  it('takes --flag VALUE and --flag=VALUE over the variable, and the variable over the default', () => {
    expect(parse([]).httpPort).toBe(8000);
    expect(parse([], { PLATFORMX_HTTP_PORT: '9000' }).httpPort).toBe(9000);
    expect(parse(['--http-port', '9001'], { PLATFORMX_HTTP_PORT: '9000' }).httpPort).toBe(9001);
    expect(parse(['--http-port=9002', '--data=/srv/a=b']).httpPort).toBe(9002);
    expect(parse(['--data=/srv/a=b']).data).toBe('/srv/a=b');
    // A value option takes the next argument whatever it looks like.
    expect(parse(['--base-domain', 'example.com', '--data', '--odd']).data).toBe('--odd');
  });

  it('a switch is on when given, and its value (as its variable takes) may turn it off', () => {
    expect(parse([]).stopApps).toBe(false);
    expect(parse(['--stop-apps']).stopApps).toBe(true);
    expect(parse(['--stop-apps=false']).stopApps).toBe(false);
    expect(parse(['--stop-apps=no']).stopApps).toBe(false);
    expect(parse(['--stop-apps=yes']).stopApps).toBe(true);
    expect(parse([], { PLATFORMX_STOP_APPS: '1' }).stopApps).toBe(true);
    expect(parse(['--stop-apps=0'], { PLATFORMX_STOP_APPS: '1' }).stopApps).toBe(false);
    expect(parse(['--acme-staging=false']).acme.directoryUrl).toBe('https://acme-v02.api.letsencrypt.org/directory');
  });

  it('refuses what it does not know, and a value option without its value, in one line', () => {
    for (const argv of [['--nope'], ['--nope=1'], ['stray'], ['-x'], ['--'], ['--http-port', '1', 'extra']]) {
      const bad = argv.find((a) => a !== '--http-port' && a !== '1')!;
      expect(() => parse(argv)).toThrow(`unknown server option '${bad}': usage: platformx server [--data ./.platformx]`);
    }
    expect(() => parse(['--http-port'])).toThrow(/^--http-port needs a value$/);
    expect(() => parse(['--stop-apps', 'yes'])).toThrow("unknown server option 'yes'");
    expect(() => parse(['--keep', '0'])).toThrow("--keep must be a whole number of builds, 1 or more, not '0'");
  });
});
