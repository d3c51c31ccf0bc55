// --deny-egress as an operator types it, and the pieces of the policy that
// are plain data: no root needed.
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../src/apprunner/network-policy-cidr.js';
import { joinNetworkPolicy, type NetworkSummary } from '../src/apprunner/network-policy.js';
import type { RunSpec } from '../src/apprunner/types.js';
import { resolvers } from '../src/apprunner/network-policy-rules.js';
import { parseServerOptions } from '../src/server/server-options.js';
import { BIN, run } from './support/platform.js';

const texts = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseServerOptions(argv, env).denyEgress.map((c) => c.text);

describe('--deny-egress', () => {
  it('is repeatable, takes IPv4 and IPv6 ranges and single addresses, and defaults to none', () => {
    expect(texts([])).toEqual([]);
    expect(texts(['--deny-egress', '10.0.0.0/8', '--deny-egress=fd00::/8', '--deny-egress', '192.168.1.7'])).toEqual(['10.0.0.0/8', 'fd00::/8', '192.168.1.7/32']);
    expect(parseServerOptions(['--deny-egress', 'fd00:ec2::254'], {}).denyEgress).toEqual([{ family: 6, text: 'fd00:ec2::254/128' }]);
  });

  it('reads PLATFORMX_DENY_EGRESS as a comma-separated list, which flags on the command line replace', () => {
    const env = { PLATFORMX_DENY_EGRESS: '172.16.0.0/12, 192.168.0.0/16' };
    expect(texts([], env)).toEqual(['172.16.0.0/12', '192.168.0.0/16']);
    expect(texts(['--deny-egress', '10.0.0.0/8'], env)).toEqual(['10.0.0.0/8']);
  });

  it('refuses what is not a range, naming the flag and the fix', () => {
    expect(() => texts(['--deny-egress', '10.1.2.3/8'])).toThrow("--deny-egress '10.1.2.3/8' has bits set past /8: write 10.0.0.0/8 for the network or 10.1.2.3/32 for the one address");
    expect(() => texts(['--deny-egress', 'fe80::1/10'])).toThrow('write fe80::/10 for the network or fe80::1/128');
    expect(() => texts(['--deny-egress', 'intranet'])).toThrow("--deny-egress 'intranet' is not an address range: write ADDRESS/PREFIX");
    expect(() => texts(['--deny-egress', '10.0.0.0/33'])).toThrow('the prefix length must be a whole number 0-32');
    expect(() => texts(['--deny-egress', 'fe80::1%eth0'])).toThrow('is not an address range');
    expect(() => texts(['--deny-egress'])).toThrow('--deny-egress needs a value');
  });

  it('a bad range stops `platformx server` with one line and a non-zero exit, before anything starts', async () => {
    const r = await run(process.execPath, [BIN, 'server', '--data', '/nonexistent/px', '--deny-egress', '10.0.0.1/8']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('--deny-egress');
  });
});

describe('address ranges', () => {
  it('writes networks the way an operator reads them', () => {
    expect(parseCidr('2001:db8:0:0:1::/80').text).toBe('2001:db8:0:0:1::/80');
    expect(parseCidr('::ffff:10.0.0.0/104').text).toBe('::ffff:a00:0/104');
    expect(parseCidr('0.0.0.0/0').text).toBe('0.0.0.0/0');
    expect(parseCidr('::/0').text).toBe('::/0');
  });
});

describe('resolvers', () => {
  it('takes each nameserver address of resolv.conf once, without its zone', () => {
    const conf = '# generated\nsearch example.com\nnameserver 127.0.0.53\nnameserver fe80::1%eth0\n nameserver 127.0.0.53\nnameserver bogus\noptions edns0\n';
    expect(resolvers(conf)).toEqual(['127.0.0.53', 'fe80::1']);
  });
});

describe('the policy as the server joins it (the data plane owns the table)', () => {
  const summary: NetworkSummary = {
    mode: 'isolated', reason: null, table: 'inet platformx_x', cgroup: '/sys/fs/cgroup/unified/platformx-x-net', publicPorts: [8000], dns: [], refused: [],
  };
  const groups = () => ({ procs: ['/sys/fs/cgroup/memory/g/cgroup.procs'], dirs: [], foreground: () => {}, remove: () => {} });
  const build: RunSpec = {
    app: 'a', kind: 'build', command: ['npm', 'ci'], releaseDir: '/tmp/x', env: {}, limits: { memoryMb: 512, pids: 256, nofile: 4096 }, uid: 20000,
  };

  it('puts a build step in the app cgroup, after its own groups', () => {
    expect(joinNetworkPolicy(summary).confine(build, groups()).procs).toEqual([
      '/sys/fs/cgroup/memory/g/cgroup.procs', '/sys/fs/cgroup/unified/platformx-x-net/cgroup.procs',
    ]);
  });

  it('refuses to grant ports, which only the owner of the table can', () => {
    expect(() => joinNetworkPolicy(summary).confine({ ...build, kind: 'web', port: 4000 }, groups())).toThrow('granted by the process that owns');
    expect(() => joinNetworkPolicy(summary).grantService(20000, 'couchdb-gateway', 5984)).toThrow('granted by the process that owns');
  });

  it('changes nothing where the network is shared', () => {
    const shared = joinNetworkPolicy({ ...summary, mode: 'shared', reason: 'nft is not installed', table: null, cgroup: null });
    expect(shared.summary).toMatchObject({ mode: 'shared', reason: 'nft is not installed' });
    expect(shared.confine(build, groups()).procs).toEqual(['/sys/fs/cgroup/memory/g/cgroup.procs']);
  });
});
