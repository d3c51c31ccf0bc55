// Hostnames no tenant may take, through both ways of claiming one: register_app
// with the real dnode client through a real `ssh -N -L` tunnel made with an
// app-scoped key, and the admin's `domains:add` / `apps:create --domain` with
// the real CLI. Both ask the same check; each refusal is one line and changes nothing.
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, connect, type Answer } from './support/dnode-client.js';
import { get } from './support/apps.js';
import { Platform, run } from './support/platform.js';
import { sshClientArgs, sshClientEnv, sshTunnel } from './support/ssh-tunnel.js';

const BASE = 'apps.example.net';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxt-hosts-'));
const keyFile = path.join(tmp, 'alice');
const tunnels: ChildProcess[] = [];
let px: Platform;
let aliceTunnel: number;

async function register(hostname: string): Promise<Answer> {
  const client = await connect(aliceTunnel);
  try {
    return await call(client, 'register_app', { name: 'hello', hostname });
  } finally {
    client.close();
  }
}
const domains = async (app: string) => (JSON.parse(await px.ok(['apps:info', app, '--json'])) as { domains: string[] }).domains;

beforeAll(async () => {
  px = await Platform.start(['--ssh-port', '0', '--dnode-port', '0', '--base-domain', BASE]);
  await px.ok(['apps:create', 'hello']);
  await px.ok(['apps:create', 'victim', '--domain', 'shop.example.com']);
  expect((await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'alice', '-f', keyFile])).code).toBe(0);
  await px.ok(['keys:add', 'alice', '--app', 'hello', '--file', `${keyFile}.pub`]);
  aliceTunnel = await sshTunnel(sshClientArgs(keyFile, px.info.sshPort!), sshClientEnv(tmp), px.info.dnodePort!, tunnels);
}, 60_000);

afterAll(async () => {
  for (const t of tunnels) t.kill();
  await px?.destroy();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const IP = /^hostname '.*' is an IP address: an app is reached by a hostname of its own/;
const THIS_SERVER = /^hostname '.*' names this server itself: give the app a hostname of its own/;

/** Each hostname with the reason both paths give (the tenant's wording where it differs from the admin's is tested below). */
const REFUSED: Array<[string, RegExp]> = [
  ['127.0.0.1', IP],
  ['10.1.2.3', IP],
  ['0x7f.1', IP],
  ['2130706433', IP],
  ['127.1', IP],
  ['www.017700000001', IP],
  ['::1', IP],
  ['[::1]', IP],
  ['::ffff:127.0.0.1', IP],
  ['[2001:db8::1]', IP],
  ['localhost', THIS_SERVER],
  ['LocalHost', THIS_SERVER],
  ['www.victim.localhost', THIS_SERVER],
  [os.hostname(), THIS_SERVER],
  [BASE, /^hostname 'apps\.example\.net' is the platform's base domain: apps get APP\.apps\.example\.net/],
  ['example.net', /^hostname 'example\.net' is above the platform's base domain apps\.example\.net/],
  ['net', /^hostname 'net' is above the platform's base domain/],
  [`ghost.${BASE}`, /^hostname 'ghost\.apps\.example\.net' is reserved for app 'ghost'/],
];

describe('hostnames that belong to the platform', () => {
  it('are refused by register_app through the SSH tunnel and by domains:add, apps:create --domain, with one line each', async () => {
    for (const [host, reason] of REFUSED) {
      const tenant = await register(host);
      expect(tenant.value, host).toBeUndefined();
      expect(tenant.err?.message, host).toMatch(reason);
      const admin = await px.cli(['domains:add', 'hello', host]);
      expect([admin.code, admin.stdout], host).toEqual([1, '']);
      expect(admin.stderr.replace(/^error: /, '').trimEnd(), host).toMatch(reason);
      expect(admin.stderr.trimEnd().split('\n'), host).toHaveLength(1);
      const create = await px.cli(['apps:create', 'newcomer', '--domain', host]);
      expect([create.code, create.stderr.replace(/^error: /, '')], host).toEqual([1, expect.stringMatching(reason)]);
    }
    expect(await domains('hello')).toEqual([]);
    expect((await px.cli(['apps:info', 'newcomer'])).code).toBe(1);
    // Nothing routes an address or the machine's name to a tenant.
    for (const host of ['127.0.0.1', 'localhost', os.hostname()]) expect((await get(px.info.httpPort, host)).status, host).toBe(404);
  });
});

describe("hostnames of another app", () => {
  it('its hostnames, names under them and names above them are refused; the tenant is not told whose they are', async () => {
    const cases: Array<[string, string, string]> = [
      ['shop.example.com', "already belongs to another app: register a hostname of your own", "already belongs to app 'victim'"],
      [`victim.${BASE}`, "already belongs to another app: register a hostname of your own", "already belongs to app 'victim'"],
      [`www.victim.${BASE}`, `is under 'victim.${BASE}', a hostname of another app: register a hostname of your own`,
        `is under 'victim.${BASE}', a hostname of app 'victim': remove it from 'victim' first`],
      ['a.shop.example.com', "is under 'shop.example.com', a hostname of another app: register a hostname of your own",
        "is under 'shop.example.com', a hostname of app 'victim': remove it from 'victim' first"],
      ['example.com', "is above 'shop.example.com', a hostname of another app: register a hostname of your own",
        "is above 'shop.example.com', a hostname of app 'victim': remove it from 'victim' first"],
    ];
    for (const [host, tenantWords, adminWords] of cases) {
      expect((await register(host)).err?.message, host).toBe(`hostname '${host}' ${tenantWords}`);
      const admin = await px.cli(['domains:add', 'hello', host]);
      expect([admin.code, admin.stderr], host).toEqual([1, `error: hostname '${host}' ${adminWords}\n`]);
    }
    expect(await domains('hello')).toEqual([]);
    expect(await domains('victim')).toEqual(['shop.example.com']);
    // restart_app's hostname parameter goes through the same check.
    const client = await connect(aliceTunnel);
    const viaRestart = await call(client, 'restart_app', 'hello', 'a.shop.example.com');
    client.close();
    expect(viaRestart.err?.message).toBe("hostname 'a.shop.example.com' is under 'shop.example.com', a hostname of another app: register a hostname of your own");
  });

  it("an app's own names stay claimable: a custom domain, names under its own hostnames, its default hostname again", async () => {
    for (const host of ['hello.example.org', `www.hello.${BASE}`, `hello.${BASE}`, 'api.hello.example.org']) {
      const r = await register(host);
      expect([host, r.err]).toEqual([host, null]);
      expect(r.value).toEqual({ hello: 'hello.example.org' });
    }
    expect(await domains('hello')).toEqual(['hello.example.org', `www.hello.${BASE}`, 'api.hello.example.org']);
    // Now taken by hello: refused for victim, named to the admin.
    const admin = await px.cli(['domains:add', 'victim', 'www.hello.example.org']);
    expect(admin.stderr).toBe("error: hostname 'www.hello.example.org' is under 'hello.example.org', a hostname of app 'hello': remove it from 'hello' first\n");
  });
});
