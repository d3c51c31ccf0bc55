// What a tenant can put into names and config vars, through the real CLI
// against the real server: app names are DNS labels, config keys never touch
// Object.prototype or the variables the platform sets, values are listed
// unambiguously, `logs -n 0` shows nothing, and an app whose processes cannot
// start (NODE_OPTIONS=--require /etc/passwd) is reported as that, exit 1, while
// its previous release keeps serving.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppRepo, get, nodeApp } from './support/apps.js';
import { Platform } from './support/platform.js';

let px: Platform;
const repos: AppRepo[] = [];
const state = () => JSON.parse(fs.readFileSync(path.join(px.data, 'state.json'), 'utf8'));

beforeAll(async () => {
  px = await Platform.start(['--boot-timeout', '20']);
  await px.ok(['apps:create', 'conf']);
});
afterAll(async () => {
  await px.destroy();
  for (const r of repos) r.remove();
});

/** Runs a command that must fail with exit 1 and one line on stderr; returns that line. */
async function refused(args: string[]): Promise<string> {
  const r = await px.cli(args);
  expect([r.code, r.stderr.endsWith('\n'), r.stderr.trimEnd().split('\n').length], args.join(' ')).toEqual([1, true, 1]);
  return r.stderr.trimEnd();
}

describe('app names', () => {
  it('follow the DNS label rules: no trailing -, no punycode-style -- in 3rd-4th place', async () => {
    for (const name of ['a-', 'web-', 'xn--pple-43d', 'ab--c', '1a', 'a'.repeat(64)]) {
      expect(await refused(['apps:create', name]), name).toMatch(new RegExp(`^error: invalid app name '${name}': use a lowercase DNS label`));
    }
    await px.ok(['apps:create', 'a--b']);
    await px.ok(['apps:create', 'b']);
    expect(Object.keys(state().apps).sort()).toEqual(['a--b', 'b', 'conf']);
  });
});

describe('config keys', () => {
  it('that every JavaScript object has are refused, and config:get finds only what was set', async () => {
    for (const key of ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf']) {
      expect(await refused(['config:set', 'conf', `${key}=x`]), key).toBe(`error: config key '${key}' is not allowed (a name every JavaScript object has): pick another name`);
    }
    for (const key of ['toString', 'constructor', '__proto__']) {
      expect(await refused(['config:get', 'conf', key]), key).toBe(`error: '${key}' is not set for 'conf'`);
    }
    expect(state().apps.conf.config).toEqual({});
  });

  it('that the platform sets or that steer the loader are refused with a reason; NODE_ENV stays the app\'s', async () => {
    for (const key of ['PORT', 'PATH', 'HOME', 'PWD', 'DYNO', 'LANG', 'npm_config_cache', 'NPM_CONFIG_UPDATE_NOTIFIER']) {
      expect(await refused(['config:set', 'conf', `${key}=/tmp/x`]), key).toBe(`error: config key '${key}' is reserved: the platform sets it for each process`);
    }
    for (const key of ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'ld_preload', 'GCONV_PATH', 'GLIBC_TUNABLES', 'MALLOC_TRACE', 'BASH_ENV']) {
      expect(await refused(['config:set', 'conf', `${key}=/app/p.so`]), key).toMatch(new RegExp(`^error: config key '${key}' is not allowed: it makes the dynamic loader`));
    }
    // One refused key refuses the whole command.
    await refused(['config:set', 'conf', 'GOOD=1', 'LD_PRELOAD=/app/p.so']);
    expect(state().apps.conf.config).toEqual({});
    await px.ok(['config:set', 'conf', 'NODE_ENV=staging']);
    expect(state().apps.conf.config).toEqual({ NODE_ENV: 'staging' });
    // A reserved name set before the rule existed can still be removed.
    await px.ok(['config:unset', 'conf', 'PATH', 'NODE_ENV']);
    expect(state().apps.conf.config).toEqual({});
  });
});

describe('config values', () => {
  it('are listed one variable per line, quoted as a shell reads them back; --json and config:get give them exactly', async () => {
    const values = { CERT: 'line1\nEVIL=1', PLAIN: 'abc-1.2/x', SPACED: 'a b', QUOTE: "it's", EMPTY: '', ESC: 'red\x1b[31m\u202e' };
    await px.ok(['config:set', 'conf', ...Object.entries(values).map(([k, v]) => `${k}=${v}`)]);
    expect(await px.ok(['config', 'conf'])).toBe([
      "CERT=$'line1\\nEVIL=1'",
      'PLAIN=abc-1.2/x',
      "SPACED='a b'",
      "QUOTE='it'\\''s'",
      "EMPTY=''",
      "ESC=$'red\\x1b[31m\\u202e'",
    ].join('\n') + '\n');
    expect(JSON.parse(await px.ok(['config', 'conf', '--json']))).toEqual(values);
    expect(await px.ok(['config:get', 'conf', 'CERT'])).toBe('line1\nEVIL=1\n');
  });
});

describe('an app whose processes cannot start', () => {
  it('config:set NODE_OPTIONS=--require /etc/passwd fails with exit 1 and says why; the old release serves', async () => {
    const token = await px.createApp('starter');
    const repo = await AppRepo.create(nodeApp('v1 serving'));
    repos.push(repo);
    expect((await repo.push(px.gitUrl('starter', token))).code).toBe(0);
    const failed = await refused(['config:set', 'starter', 'NODE_OPTIONS=--require /etc/passwd']);
    expect(failed).toMatch(/^error: the new processes did not start: the process exited with code \d+ before listening on PORT \d+; the previous ones keep serving \(see 'platformx logs starter'\)$/);
    expect((await get(px.info.httpPort, 'starter.localhost')).body).toBe('v1 serving');
    expect(state().apps.starter.config).toEqual({});
    const releases = JSON.parse(await px.ok(['releases', 'starter', '--json']));
    expect(releases.map((r: { version: string; status: string }) => [r.version, r.status])).toEqual([['v2', 'failed'], ['v1', 'succeeded']]);
  });

  it('logs -n 0 prints no line, -n 1 the last one', async () => {
    // The router's line for the last request is written a moment after its answer: wait until the log is still.
    const read = async () => (await px.ok(['logs', 'starter', '-n', '1000'])).trimEnd().split('\n');
    let all = await read();
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const again = await read();
      if (again.length === all.length) break;
      all = again;
    }
    expect(all.length).toBeGreaterThan(3);
    expect(await px.ok(['logs', 'starter', '-n', '0'])).toBe('');
    expect(await px.ok(['logs', 'starter', '-n', '1'])).toBe(`${all[all.length - 1]}\n`);
  });
});
