// --deny-egress as an operator types it, and the pieces of the policy that
// are plain data: no root needed.
import { describe, expect, it } from 'vitest';
import { parseCidr } from '../src/apprunner/network-policy-cidr.js';
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
