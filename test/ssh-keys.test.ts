// Deploy keys and the host key: parsing with real ssh-keygen output, the keys:*
// commands through the real dispatcher, and the host key kept on disk.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { createDispatcher } from '../src/control/command-table.js';
import type { Caller, Dispatch } from '../src/control/types.js';
import { generateEd25519, loadOrCreateHostKey } from '../src/ssh/host-key.js';
import { keyCommands } from '../src/ssh/key-commands.js';
import { parsePublicKey } from '../src/ssh/public-keys.js';
import { StateStore } from '../src/state/store.js';
import { DEFAULT_LIMITS } from '../src/state/types.js';
import { dispatchCaptured } from './support/dispatch.js';

let base = '';
const keys: Record<string, { priv: string; pub: string; fingerprint: string }> = {};

function keygen(name: string, args: string[]): void {
  const file = path.join(base, name);
  execFileSync('ssh-keygen', ['-q', ...args, '-C', `${name}@test`, '-f', file]);
  keys[name] = {
    priv: fs.readFileSync(file, 'utf8'),
    pub: fs.readFileSync(`${file}.pub`, 'utf8'),
    fingerprint: execFileSync('ssh-keygen', ['-lf', `${file}.pub`]).toString().split(' ')[1]!,
  };
}

beforeAll(() => {
  base = fs.mkdtempSync(path.join(os.tmpdir(), 'pxkeys-'));
  keygen('ed', ['-t', 'ed25519', '-N', '']);
  keygen('ed2', ['-t', 'ed25519', '-N', '']);
  keygen('ec', ['-t', 'ecdsa', '-b', '384', '-N', '']);
  keygen('rsa', ['-t', 'rsa', '-b', '2048', '-N', '']);
  keygen('rsa1024', ['-t', 'rsa', '-b', '1024', '-N', '']);
  keygen('locked', ['-t', 'ed25519', '-N', 'secret phrase']);
});

afterAll(() => {
  if (base) fs.rmSync(base, { recursive: true, force: true });
});

describe('parsePublicKey', () => {
  test.each(['ed', 'ec', 'rsa'])('accepts %s keys with the same fingerprint as ssh-keygen', (name) => {
    const k = parsePublicKey(keys[name]!.pub);
    expect(k.fingerprint).toBe(keys[name]!.fingerprint);
    expect(k.line).toBe(keys[name]!.pub.trim().split(' ').slice(0, 2).join(' '));
    expect(k.comment).toBe(`${name}@test`);
  });

  test('accepts surrounding blank lines and CRLF', () => {
    expect(parsePublicKey(`\r\n${keys.ed!.pub.trim()}\r\n\n`).fingerprint).toBe(keys.ed!.fingerprint);
  });

  test.each([
    ['a private key', () => keys.ed!.priv, 'that is a private key'],
    ['an encrypted private key', () => keys.locked!.priv, 'that is a private key'],
    ['garbage', () => 'hello world', 'not an OpenSSH public key'],
    ['an empty input', () => '', 'no public key given'],
    ['a damaged key', () => keys.ed!.pub.replace(/AAAA(.{10})/, 'AAAA$1!!'), 'malformed public key'],
    ['a truncated key', () => keys.ed!.pub.slice(0, 40), 'malformed public key'],
    ['two keys', () => keys.ed!.pub + keys.ec!.pub, 'exactly one public key line, got 2'],
    ['a weak RSA key', () => keys.rsa1024!.pub, 'RSA key of 1024 bits is too weak'],
    ['an authorized_keys line with options', () => `command="sh" ${keys.ed!.pub}`, 'not an OpenSSH public key'],
    ['a security key', () => 'sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t x', 'security-key (FIDO)'],
  ])('refuses %s with a one-line reason', (_what, input, message) => {
    let error: Error | null = null;
    try {
      parsePublicKey(input());
    } catch (err) {
      error = err as Error;
    }
    expect(error?.name).toBe('UserError');
    expect(error?.message).toContain(message);
    expect(error?.message).not.toContain('\n');
  });
});

describe('keys:* commands', () => {
  let store: StateStore;
  let dispatch: Dispatch;
  const LOCAL: Caller = { kind: 'local', name: 'local', admin: true, apps: [] };

  const cli = (argv: string[], stdin?: string, caller: Caller = LOCAL) => dispatchCaptured(dispatch, argv, caller, stdin);

  beforeEach(() => {
    const file = path.join(fs.mkdtempSync(path.join(base, 'state-')), 'state.json');
    store = new StateStore(file);
    store.update((s) => {
      for (const name of ['hello', 'world']) {
        s.apps[name] = {
          name, domains: [], createdAt: '2024-01-01T00:00:00.000Z', tokens: [], current: null,
          config: {}, formation: {}, limits: DEFAULT_LIMITS, uid: null,
        };
      }
    });
    dispatch = createDispatcher(keyCommands(store));
  });

  test('add, list, grant, revoke, remove', async () => {
    const add = await cli(['keys:add', 'alice@laptop', '--app', 'hello'], keys.ed!.pub);
    expect(add).toEqual({ code: 0, stdout: `Added key alice@laptop (${keys.ed!.fingerprint}) for hello\n`, stderr: '' });
    expect((await cli(['keys:add', 'ci', '--admin'], keys.ec!.pub)).code).toBe(0);

    const stored = store.get().keys.find((k) => k.name === 'alice@laptop')!;
    expect(stored).toMatchObject({ publicKey: keys.ed!.pub.trim().split(' ').slice(0, 2).join(' '), fingerprint: keys.ed!.fingerprint, admin: false, apps: ['hello'], lastUsed: null });

    const list = await cli(['keys:list']);
    expect(list.code).toBe(0);
    const lines = list.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^NAME\s+FINGERPRINT\s+SCOPE\s+ADDED\s+LAST USED$/);
    expect(lines[1]).toMatch(new RegExp(`^alice@laptop\\s+${keys.ed!.fingerprint.replace(/[+/]/g, '\\$&')}\\s+hello\\s+\\S+\\s+never$`));
    expect(lines[2]).toMatch(/^ci\s+\S+\s+admin\s+/);

    expect((await cli(['keys:grant', 'alice@laptop', 'world'])).stdout).toBe('Granted world to key alice@laptop\n');
    expect((await cli(['keys:grant', 'alice@laptop', 'world'])).stdout).toBe('Key alice@laptop already reaches world\n');
    const json = JSON.parse((await cli(['keys:list', '--json'])).stdout);
    expect(json[0]).toMatchObject({ name: 'alice@laptop', fingerprint: keys.ed!.fingerprint, type: 'ssh-ed25519', admin: false, apps: ['hello', 'world'], lastUsed: null });

    expect((await cli(['keys:revoke', 'alice@laptop', 'hello'])).code).toBe(0);
    expect(store.get().keys[0]!.apps).toEqual(['world']);
    expect((await cli(['keys:remove', 'alice@laptop'])).code).toBe(0);
    expect(store.get().keys.map((k) => k.name)).toEqual(['ci']);
  });

  test('the same key cannot be added twice, under any name', async () => {
    expect((await cli(['keys:add', 'alice', '--app', 'hello'], keys.ed!.pub)).code).toBe(0);
    const again = await cli(['keys:add', 'alice2', '--app', 'world'], keys.ed!.pub.replace('ed@test', 'other comment'));
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`error: this key is already added as 'alice' (${keys.ed!.fingerprint}): use keys:grant to give it more apps\n`);
    const sameName = await cli(['keys:add', 'alice', '--app', 'hello'], keys.ed2!.pub);
    expect(sameName.stderr).toContain("a key named 'alice' already exists");
    expect(store.get().keys).toHaveLength(1);
  });

  test.each([
    [['keys:add', 'bad name!', '--app', 'hello'], 'invalid key name'],
    [['keys:add', 'k', '--app', 'nope'], "app 'nope' does not exist"],
    [['keys:add', 'k', '--app', 'Bad_App'], 'invalid app name'],
    [['keys:add', 'k'], 'say what the key may reach'],
    [['keys:add', 'k', '--admin', '--app', 'hello'], 'either --admin or --app'],
    [['keys:add', 'k', '--admin', '--file', '/etc/passwd'], '--file is read by the local platformx CLI'],
    [['keys:remove', 'ghost'], "no key named 'ghost'"],
    [['keys:grant', 'ghost', 'hello'], "no key named 'ghost'"],
  ])('%j is refused with one line and changes nothing', async (argv, message) => {
    const before = JSON.stringify(store.get());
    const r = await cli(argv, keys.ed!.pub);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(message);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(JSON.stringify(store.get())).toBe(before);
  });

  test('private keys and garbage given to keys:add are refused and not stored', async () => {
    for (const input of [keys.ed!.priv, keys.locked!.priv, 'garbage', '']) {
      const r = await cli(['keys:add', 'k', '--app', 'hello'], input);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/^error: (that is a private key|not an OpenSSH public key|no public key given)/);
      expect(r.stderr).not.toContain('PRIVATE');
    }
    expect(store.get().keys).toEqual([]);
  });

  test('grant and revoke check the app and the key kind', async () => {
    await cli(['keys:add', 'admin', '--admin'], keys.ed!.pub);
    await cli(['keys:add', 'dev', '--app', 'hello'], keys.ec!.pub);
    expect((await cli(['keys:grant', 'admin', 'hello'])).stderr).toContain('is an admin key');
    expect((await cli(['keys:revoke', 'admin', 'hello'])).stderr).toContain('is an admin key');
    expect((await cli(['keys:grant', 'dev', 'nope'])).stderr).toContain("app 'nope' does not exist");
    expect((await cli(['keys:revoke', 'dev', 'world'])).stderr).toContain("key 'dev' has no access to 'world'");
  });

  test('only admins manage keys', async () => {
    const dev: Caller = { kind: 'key', name: 'dev', admin: false, apps: ['hello'] };
    for (const argv of [['keys:list'], ['keys:add', 'x', '--app', 'hello'], ['keys:grant', 'dev', 'world'], ['keys:remove', 'dev']]) {
      const r = await cli(argv, keys.ed2!.pub, dev);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('needs an admin key');
    }
    expect(store.get().keys).toEqual([]);
  });
});

describe('host key', () => {
  test('made once with mode 0600, then reused', () => {
    const file = path.join(base, 'data1', 'ssh_host_ed25519_key');
    const first = loadOrCreateHostKey(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(first.publicKey).toMatch(/^ssh-ed25519 AAAA/);
    expect(first.fingerprint).toBe(execFileSync('ssh-keygen', ['-lf', file]).toString().split(' ')[1]);
    expect(fs.readFileSync(`${file}.pub`, 'utf8').startsWith(first.publicKey)).toBe(true);
    const again = loadOrCreateHostKey(file);
    expect(again.fingerprint).toBe(first.fingerprint);
    expect(again.privateKey).toBe(first.privateKey);
  });

  test('a key file readable by others is tightened; one made by ssh-keygen is used as is', () => {
    const file = path.join(base, 'data2', 'host_key');
    fs.mkdirSync(path.dirname(file));
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', file]);
    fs.chmodSync(file, 0o644);
    const k = loadOrCreateHostKey(file);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(k.fingerprint).toBe(execFileSync('ssh-keygen', ['-lf', file]).toString().split(' ')[1]);
  });

  test('every new host key parses (ssh2 writes 1 ed25519 key in 256 malformed)', () => {
    // 2,000 draws: ssh2's own generator yields a malformed key among them with probability 1 - (255/256)^2000 > 0.999.
    for (let i = 0; i < 2000; i++) {
      const pair = generateEd25519();
      expect(ssh2.utils.parseKey(pair.private)).not.toBeInstanceOf(Error);
      expect(ssh2.utils.parseKey(pair.public)).not.toBeInstanceOf(Error);
    }
    // And OpenSSH reads one as its own.
    const file = path.join(base, 'openssh_reads');
    fs.writeFileSync(file, generateEd25519().private, { mode: 0o600 });
    expect(execFileSync('ssh-keygen', ['-y', '-f', file]).toString()).toMatch(/^ssh-ed25519 AAAA/);
  });

  test('a damaged key is an error, never silently replaced', () => {
    const file = path.join(base, 'data3', 'host_key');
    fs.mkdirSync(path.dirname(file));
    fs.writeFileSync(file, 'not a key', { mode: 0o600 });
    expect(() => loadOrCreateHostKey(file)).toThrow(/cannot use SSH host key .*restore it from a backup, or delete it/);
    expect(fs.readFileSync(file, 'utf8')).toBe('not a key');
  });
});
