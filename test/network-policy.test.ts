// The network policy as root: a hostile app and a hostile build step try every
// platform listener, another app's port, a platform backend, the proxy and
// their own port, over 127.0.0.1 and ::1; only the proxy and their own port
// connect, and every refusal is immediate. Ranges beyond loopback (link-local,
// --deny-egress) are checked in the rules in force and, functionally, between
// two network namespaces this test makes: nothing leaves this machine.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolvers } from '../src/apprunner/network-policy-rules.js';
import { get, nodeApp, pushNewApp, waitFor, type AppRepo } from './support/apps.js';
import { alive, Platform, run } from './support/platform.js';

const isRoot = process.getuid?.() === 0;

// Connects to each target once; reports the error code (or OK) and how long it took.
const PROBE = `
const net = require('net');
function one(t) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const s = net.connect({ host: t.host, port: t.port });
    const done = (code) => { clearTimeout(timer); s.destroy(); resolve({ code, ms: Date.now() - t0 }); };
    const timer = setTimeout(() => done('TIMEOUT'), 3000);
    s.on('connect', () => done('OK'));
    s.on('error', (e) => done(e.code));
  });
}
async function probe(targets) {
  const out = {};
  for (const [name, t] of Object.entries(targets)) out[name] = await one(t);
  return out;
}
module.exports = probe;
if (require.main === module) probe(JSON.parse(process.argv[2])).then((r) => console.log(JSON.stringify(r)));
`;

const HOSTILE_SERVER = `
const http = require('http');
const probe = require('./probe.js');
http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (url.pathname !== '/probe') return res.end('hostile');
  const targets = JSON.parse(url.searchParams.get('t'));
  const port = Number(process.env.PORT);
  res.end(JSON.stringify(await probe({ ...targets, own4: { host: '127.0.0.1', port }, own6: { host: '::1', port } })));
}).listen(process.env.PORT);
`;

type Outcome = Record<string, { code: string; ms: number }>;

// A resolver of this machine beyond loopback, if any: denied as a range, its port 53 must stay open.
const resolver = fs.existsSync('/etc/resolv.conf')
  ? resolvers(fs.readFileSync('/etc/resolv.conf', 'utf8')).find((a) => net.isIPv4(a) && !a.startsWith('127.'))
  : undefined;
const DENY = ['10.99.0.0/16', '2001:db8:99::/48', ...(resolver ? [`${resolver}/32`] : [])];
// Serves on these ports on every address of a namespace.
const LISTENER = `const net = require('net'); let n = 0;
for (const p of [8080, 53]) net.createServer((s) => s.end()).listen(p, '::', () => ++n === 2 && console.log('up'));`;

let px: Platform;
const repos: AppRepo[] = [];
const backends: net.Server[] = [];
let targets: Record<string, { host: string; port: number }> = {};
let hostileBuild: Outcome = {};

async function listen(host: string): Promise<number> {
  const server = net.createServer((s) => s.end());
  backends.push(server);
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return (server.address() as net.AddressInfo).port;
}

async function deploy(app: string, files: Record<string, string>) {
  const { repo, push } = await pushNewApp(px, app, files);
  repos.push(repo);
  return push;
}

async function ps(app: string): Promise<Array<{ pid: number; port: number }>> {
  return JSON.parse(await px.ok(['ps', app, '--json']));
}

async function serverInfo() {
  return JSON.parse(await px.ok(['server:info', '--json']));
}

/** The table as nft reports it: sets by name, and the rules of each chain as text. */
async function tableInForce(table: string) {
  const r = await run('nft', ['-j', 'list', 'table', ...table.split(' ')]);
  expect(r.code, r.stderr).toBe(0);
  const items = (JSON.parse(r.stdout) as { nftables: Array<Record<string, { name?: string; chain?: string; elem?: unknown[] }>> }).nftables;
  const sets = new Map<string, unknown[]>();
  for (const i of items) if (i.set) sets.set(i.set.name!, i.set.elem ?? []);
  const rules = items.filter((i) => i.rule).map((i) => JSON.stringify(i.rule));
  return { sets, rules };
}

const prefixes = (elems: unknown[]) =>
  elems.map((e) => (typeof e === 'string' ? e : `${(e as { prefix: { addr: string; len: number } }).prefix.addr}/${(e as { prefix: { len: number } }).prefix.len}`));

/** The own-port elements in force, as `uid . port`, and what they should be: each app's processes' ports. */
async function ownPorts(table: string) {
  const { sets } = await tableInForce(table);
  const inForce = (sets.get('own_ports') as Array<{ concat: [number, number] }>).map((e) => e.concat.join(' . ')).sort();
  const uid = async (app: string) => JSON.parse(await px.ok(['apps:info', app, '--json'])).uid as number;
  // Neither app has a database, so neither is granted the CouchDB gateway.
  const expected = [`${await uid('victim')} . ${(await ps('victim'))[0]!.port}`, `${await uid('hostile')} . ${(await ps('hostile'))[0]!.port}`].sort();
  return { inForce, expected, publicPorts: sets.get('public_ports') };
}

async function probeVictim(): Promise<Outcome> {
  const t = encodeURIComponent(JSON.stringify({ victim4: { host: '127.0.0.1', port: (await ps('victim'))[0]!.port } }));
  return JSON.parse((await get(px.info.httpPort, 'hostile.localhost', `/probe?t=${t}`)).body) as Outcome;
}

/** The app cgroup, as the rules in force name it (below /sys/fs/cgroup). */
async function appCgroup(table: string): Promise<string> {
  const r = await run('nft', ['list', 'table', ...table.split(' ')]);
  const m = /cgroupv2 level \d+ "([^"]+)"/.exec(r.stdout);
  if (!m) throw new Error(`no app cgroup in the rules:\n${r.stdout}`);
  return m[1]!;
}

async function platformxTables(): Promise<string[]> {
  const r = await run('nft', ['list', 'tables']);
  return r.stdout.split('\n').filter((l) => l.includes('platformx_')).map((l) => l.trim());
}

function expectOnlyAllowed(r: Outcome, allowed: string[]) {
  for (const [name, { code, ms }] of Object.entries(r)) {
    if (allowed.includes(name)) expect(code, name).toBe('OK');
    else {
      expect(code, name).toBe('ECONNREFUSED');
      expect(ms, `${name} is refused at once, not after a timeout`).toBeLessThan(500);
    }
  }
}

beforeAll(async () => {
  if (!isRoot) return;
  px = await Platform.start(['--ssh-port', '0', '--dnode-port', '0', ...DENY.flatMap((c) => ['--deny-egress', c])]);
  const info = await serverInfo();
  await deploy('victim', nodeApp('victim ok'));
  const [victim] = await ps('victim');
  // Stand-ins for platform service backends (CouchDB…), held by root like the server's own.
  const [backend4, backend6] = [await listen('127.0.0.1'), await listen('::1')];
  targets = {
    gitHttp: { host: '127.0.0.1', port: info.gitHttpPort },
    ssh: { host: '127.0.0.1', port: info.sshPort },
    dnode: { host: '127.0.0.1', port: info.dnodePort },
    victim4: { host: '127.0.0.1', port: victim!.port },
    victim6: { host: '::1', port: victim!.port },
    backend4: { host: '127.0.0.1', port: backend4 },
    backend6: { host: '::1', port: backend6 },
    proxy: { host: '127.0.0.1', port: info.httpPort },
  };
  const push = await deploy('hostile', {
    'package.json': JSON.stringify({
      name: 'hostile', version: '1.0.0', dependencies: { helper: 'file:./helper' },
      scripts: { start: 'node server.js', preinstall: 'node evil-build.js' },
    }),
    'helper/package.json': JSON.stringify({ name: 'helper', version: '1.0.0' }),
    'probe.js': PROBE,
    'evil-build.js': `require('./probe.js')(${JSON.stringify(targets)}).then((r) => console.log('PROBED ' + JSON.stringify(r)));`,
    'server.js': HOSTILE_SERVER,
  });
  const line = push.stderr.split('\n').find((l) => l.includes('PROBED '));
  if (!line) throw new Error(`the hostile build printed no probe result:\n${push.stderr}`);
  hostileBuild = JSON.parse(line.slice(line.indexOf('PROBED ') + 7));
});

afterAll(async () => {
  await px?.destroy();
  for (const r of repos) r.remove();
  for (const b of backends) b.close();
});

describe.runIf(isRoot)('the network policy, as root', () => {
  it('says the network is isolated and shows the policy', async () => {
    const app = JSON.parse(await px.ok(['apps:info', 'hostile', '--json']));
    expect(app.network).toBe('isolated');
    expect(await px.ok(['apps:info', 'hostile'])).toMatch(/network:\s+isolated/);
    const { network } = await serverInfo();
    expect(network.mode).toBe('isolated');
    expect(network.publicPorts).toEqual(publicPorts());
    expect(network.refused).toEqual(['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', ...DENY]);
    const text = await px.ok(['server:info']);
    expect(text).toContain(`isolated (nftables ${network.table})`);
    expect(text).toContain('10.99.0.0/16');
  });

  it('a hostile build step reaches the proxy and nothing else on this machine, refused at once', () => {
    expect(Object.keys(hostileBuild).sort()).toEqual(Object.keys(targets).sort());
    expectOnlyAllowed(hostileBuild, ['proxy']);
  });

  it('a hostile app reaches the proxy and its own port (IPv4 and IPv6), and no other app, platform listener or backend', async () => {
    const t = encodeURIComponent(JSON.stringify(targets));
    const r = JSON.parse((await get(px.info.httpPort, 'hostile.localhost', `/probe?t=${t}`)).body) as Outcome;
    expect(Object.keys(r).sort()).toEqual([...Object.keys(targets), 'own4', 'own6'].sort());
    expectOnlyAllowed(r, ['proxy', 'own4', 'own6']);
    // Through the proxy, by its public hostname, the victim is reachable as from anywhere else.
    expect((await get(px.info.httpPort, 'victim.localhost')).body).toBe('victim ok');
  });

  it('the rules in force refuse link-local and the --deny-egress ranges, and allow each app exactly its own ports', async () => {
    const { network } = await serverInfo();
    const { sets, rules } = await tableInForce(network.table);
    expect(prefixes(sets.get('refused4')!)).toEqual(expect.arrayContaining(['169.254.0.0/16', '10.99.0.0/16']));
    expect(prefixes(sets.get('refused6')!)).toEqual(expect.arrayContaining(['fe80::/10', '2001:db8:99::/48', 'fd00:ec2::254']));
    expect(sets.get('public_ports')).toEqual(publicPorts());
    const own = await ownPorts(network.table);
    expect(own.inForce).toEqual(own.expected);
    expect(rules.some((r) => r.includes('"reject"') && r.includes('"tcp reset"'))).toBe(true);
  });

  /** The proxy's public ports: HTTP, and HTTPS (the test servers listen on both). */
const publicPorts = () => [px.info.httpPort, px.info.httpsPort].filter((p): p is number => typeof p === 'number').sort((a, b) => a - b);

describe('between two network namespaces made by the test', () => {
    const client = `pxnc${process.pid}`;
    const far = `pxns${process.pid}`;
    const listeners: ChildProcess[] = [];
    let probeFile = '';
    let procs = '';
    // nsenter, not `ip netns exec`: that remounts /sys, hiding the cgroup hierarchy the rules name.
    const inNs = (ns: string) => ['nsenter', `--net=/run/netns/${ns}`];
    const sh = (ns: string, cmd: string) => run(inNs(ns)[0]!, [...inNs(ns).slice(1), 'sh', '-ec', cmd]);

    beforeAll(async () => {
      const { network } = await serverInfo();
      const rules = await run('nft', ['list', 'table', ...network.table.split(' ')]);
      procs = path.join('/sys/fs/cgroup', await appCgroup(network.table), 'cgroup.procs');
      for (const ns of [client, far]) expect((await run('ip', ['netns', 'add', ns])).code).toBe(0);
      expect((await run('ip', ['link', 'add', 'pxa', 'netns', client, 'type', 'veth', 'peer', 'name', 'pxb', 'netns', far])).code).toBe(0);
      expect((await sh(client, `ip link set lo up; ip link set pxa up
        ip addr add 198.51.100.1/24 dev pxa; ip -6 addr add 2001:db8::1/64 dev pxa nodad; ip -6 addr add fe80::1/64 dev pxa nodad
        ip route add default via 198.51.100.2; ip -6 route add default via 2001:db8::2`)).code).toBe(0);
      expect((await sh(far, `ip link set lo up; ip link set pxb up
        ip addr add 198.51.100.2/24 dev pxb; ip -6 addr add 2001:db8::2/64 dev pxb nodad; ip -6 addr add fe80::2/64 dev pxb nodad
        for a in 169.254.169.254 10.99.0.1 203.0.113.7 ${resolver ?? ''}; do ip addr add $a/32 dev pxb; done
        for a in 2001:db8:99::1 2001:db8:7::1; do ip -6 addr add $a/128 dev pxb nodad; done`)).code).toBe(0);
      // The rules in force, loaded into the client namespace: its packets meet exactly what an app's would.
      const load = await new Promise<number>((resolve) => {
        const c = spawn('nsenter', [...inNs(client).slice(1), 'nft', '-f', '-'], { stdio: ['pipe', 'ignore', 'inherit'] });
        c.on('close', (code) => resolve(code ?? 1));
        c.stdin.end(rules.stdout);
      });
      expect(load).toBe(0);
      // Listeners on the far side, and on the client namespace's own addresses (as on this machine's LAN address).
      for (const ns of [far, client]) {
        const l = spawn('nsenter', [...inNs(ns).slice(1), process.execPath, '-e', LISTENER], { stdio: ['ignore', 'pipe', 'inherit'] });
        listeners.push(l);
        await new Promise((resolve) => l.stdout!.once('data', resolve));
      }
      probeFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pxnp-')), 'probe.js');
      fs.writeFileSync(probeFile, PROBE);
      fs.chmodSync(path.dirname(probeFile), 0o755);
    });

    afterAll(async () => {
      for (const l of listeners) l.kill('SIGKILL');
      for (const ns of [client, far]) await run('ip', ['netns', 'del', ns]);
      if (probeFile) fs.rmSync(path.dirname(probeFile), { recursive: true, force: true });
    });

    const beyond: Record<string, { host: string; port: number }> = {
      ownLanAddress: { host: '198.51.100.1', port: 8080 },
      metadata: { host: '169.254.169.254', port: 8080 },
      linkLocal6: { host: 'fe80::2%pxa', port: 8080 },
      denied4: { host: '10.99.0.1', port: 8080 },
      denied6: { host: '2001:db8:99::1', port: 8080 },
      outside4: { host: '203.0.113.7', port: 8080 },
      outside6: { host: '2001:db8:7::1', port: 8080 },
      ...(resolver ? { resolverDns: { host: resolver, port: 53 }, resolverOther: { host: resolver, port: 8080 } } : {}),
    };

    async function probeFromClient(inAppCgroup: boolean): Promise<Outcome> {
      const join = inAppCgroup ? `echo $$ > ${procs}; ` : '';
      const r = await sh(client, `${join}exec setpriv --reuid 20999 --regid 20999 --clear-groups ${process.execPath} ${probeFile} '${JSON.stringify(beyond)}'`);
      expect(r.code, r.stderr).toBe(0);
      return JSON.parse(r.stdout);
    }

    it('an app process reaches the outside and DNS, but not link-local addresses, the --deny-egress ranges or the machine by its LAN address', async () => {
      expectOnlyAllowed(await probeFromClient(true), ['outside4', 'outside6', 'resolverDns']);
    });

    it('a process outside the app cgroup reaches all of them (the rules single out the apps)', async () => {
      expectOnlyAllowed(await probeFromClient(false), Object.keys(beyond));
    });
  });

  it('a server killed with SIGKILL leaves its apps serving under the same rules, which the next server keeps', async () => {
    const { network } = await serverInfo();
    const before = await ownPorts(network.table);
    await px.kill9();
    await px.boot();
    expect(px.output.slice(px.output.lastIndexOf('--- boot ---'))).toMatch(/data plane pid \d+ kept serving/);
    expect((await platformxTables()).filter((t) => t === `table ${network.table}`)).toHaveLength(1);
    const after = await ownPorts(network.table);
    expect(after.inForce).toEqual(after.expected);
    expect(after.inForce).toEqual(before.inForce);
    expect(after.publicPorts).toEqual(publicPorts());
    expectOnlyAllowed(await probeVictim(), ['own4', 'own6']);
  });

  it('a server started with other --deny-egress ranges replaces the running data plane, and the rules refuse them', async () => {
    await px.kill9(); // the data plane serves on, with the old ranges
    px.extraArgs.push('--deny-egress', '172.31.0.0/16');
    await px.boot();
    expect(px.output.slice(px.output.lastIndexOf('--- boot ---'))).toContain('refuses other ranges');
    const { network } = await serverInfo();
    expect(network.refused).toEqual(['169.254.0.0/16', 'fe80::/10', 'fd00:ec2::254/128', ...DENY, '172.31.0.0/16']);
    expect((await platformxTables()).filter((t) => t === `table ${network.table}`)).toHaveLength(1);
    const { sets } = await tableInForce(network.table);
    expect(prefixes(sets.get('refused4')!)).toContain('172.31.0.0/16');
    const own = await ownPorts(network.table);
    expect(own.inForce).toEqual(own.expected);
  });

  it('when the data plane is killed too, the next start replaces the stale rules before any app starts; a clean stop leaves none', async () => {
    const { network } = await serverInfo();
    const table = network.table as string;
    const old = await ownPorts(table);
    const dataplane = px.dataplanePid()!;
    await px.kill9();
    process.kill(dataplane, 'SIGKILL');
    await waitFor(async () => !alive(dataplane), 10_000, 'the data plane to die');
    expect(await platformxTables()).toContain(`table ${table}`); // left behind

    await px.boot();
    expect(px.output.slice(px.output.lastIndexOf('--- boot ---'))).toMatch(/data plane started/);
    expect((await platformxTables()).filter((t) => t === `table ${table}`)).toHaveLength(1);
    const now = await ownPorts(table);
    expect(now.publicPorts).toEqual(publicPorts());
    expect(now.inForce).toEqual(now.expected);
    expect(now.inForce.filter((e) => old.inForce.includes(e))).toEqual([]); // nothing of the killed data plane's apps
    expectOnlyAllowed(await probeVictim(), ['own4', 'own6']);

    const group = path.join('/sys/fs/cgroup', await appCgroup(table));
    expect(fs.existsSync(group)).toBe(true);
    await px.stop(); // --stop-apps: the data plane and its apps stop too
    await waitFor(async () => !alive(px.dataplanePid()!), 15_000, 'the data plane to stop');
    expect(await platformxTables()).not.toContain(`table ${table}`);
    expect(fs.existsSync(group), 'the app cgroup is removed too').toBe(false);
  });
});
