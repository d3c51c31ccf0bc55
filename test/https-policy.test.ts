// The rules HTTPS runs by, as pure functions: when a certificate renews, how
// failures back off, how HTTP/2 request headers reach an HTTP/1.1 app.
import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../src/certs/acme-issuer.js';
import { isPublicDomain } from '../src/certs/cert-manager.js';
import { covers } from '../src/certs/certificate.js';
import { http1Headers } from '../src/certs/h2-adapter.js';
import { backoffMs, rateLimitBackoffMs, renewAt } from '../src/certs/renewal-policy.js';
import { parseServerOptions } from '../src/server/server-options.js';

const DAY = 86_400_000;
const at = (days: number) => new Date(Date.UTC(2030, 0, 1) + days * DAY);

describe('renewal time', () => {
  it('renews a 90-day certificate with 30 days left, a 45-day one with 30 days left too', () => {
    expect(renewAt(at(0), at(90))).toBe(at(60).getTime());
    expect(renewAt(at(0), at(45))).toBe(at(15).getTime());
  });
  it('renews a short-lived certificate a third into its life, never the moment it arrives', () => {
    expect(renewAt(at(0), at(6))).toBe(at(2).getTime());
    const start = new Date(0);
    expect(renewAt(start, new Date(30_000))).toBe(10_000);
  });
  it('renews a long one with 30 days or a third of its life left, whichever comes first', () => {
    expect(renewAt(at(0), at(397))).toBe(at(397 - 397 / 3).getTime());
  });
});

describe('backoff', () => {
  it('waits 5 minutes after a failure, doubling, at most a day', () => {
    expect([1, 2, 3, 4].map(backoffMs)).toEqual([5, 10, 20, 40].map((m) => m * 60_000));
    expect(backoffMs(20)).toBe(DAY);
  });
  it('a rate limit waits its Retry-After, at least an hour', () => {
    expect(rateLimitBackoffMs(1, null)).toBe(3_600_000);
    expect(rateLimitBackoffMs(1, 3 * 3_600_000)).toBe(3 * 3_600_000);
    expect(rateLimitBackoffMs(12, 1000)).toBe(DAY);
    expect(retryAfterMs('120')).toBe(120_000);
    expect(retryAfterMs(new Date(Date.now() + 60_000).toUTCString())).toBeGreaterThan(50_000);
    expect(retryAfterMs('soon')).toBeNull();
  });
});

describe('names', () => {
  it('a wildcard covers one label only', () => {
    const c = { hosts: ['*.example.com', 'example.com'] };
    expect(covers(c, 'a.example.com')).toBe(true);
    expect(covers(c, 'example.com')).toBe(true);
    expect(covers(c, 'a.b.example.com')).toBe(false);
    expect(covers(c, 'example.org')).toBe(false);
  });
  it('only public base domains get ACME certificates for APP.BASE', () => {
    expect(isPublicDomain('apps.example.com')).toBe(true);
    for (const d of ['localhost', 'apps.localhost', 'box.local', 'x.test', 'home.arpa', 'a.home.arpa', '10.0.0.1', 'intranet']) {
      expect(isPublicDomain(d), d).toBe(false);
    }
  });
});

describe('HTTP/2 request headers for an HTTP/1.1 app', () => {
  it('Host from :authority, no pseudo-headers, cookies joined with "; "', () => {
    const raw = [':method', 'GET', ':path', '/x', ':authority', 'a.example.com', ':scheme', 'https', 'cookie', 'a=1', 'accept', '*/*', 'cookie', 'b=2'];
    expect(http1Headers(raw, true)).toEqual(['Host', 'a.example.com', 'Cookie', 'a=1; b=2', 'accept', '*/*']);
  });
  it('a body without Content-Length is framed chunked; with one it is left alone', () => {
    expect(http1Headers([':authority', 'h', ':method', 'POST'], false)).toEqual(['Host', 'h', 'Transfer-Encoding', 'chunked']);
    expect(http1Headers([':authority', 'h', 'content-length', '5'], false)).toEqual(['Host', 'h', 'content-length', '5']);
  });
});

describe('server options for HTTPS', () => {
  const parse = async (argv: string[]) => parseServerOptions(argv, {});
  it('--https-port defaults to 8443; off disables it; 0 picks a free port', async () => {
    expect((await parse([])).httpsPort).toBe(8443);
    expect((await parse(['--https-port', 'off'])).httpsPort).toBeNull();
    expect((await parse(['--https-port=0'])).httpsPort).toBe(0);
    await expect(parse(['--https-port', 'x'])).rejects.toThrow(/--https-port must be a port number 0-65535 or 'off', not 'x'/);
  });
  it('Let\'s Encrypt production by default, staging with --acme-staging, never both with --acme-directory', async () => {
    expect((await parse([])).acme).toEqual({ directoryUrl: 'https://acme-v02.api.letsencrypt.org/directory', caFile: null, email: null });
    expect((await parse(['--acme-staging'])).acme.directoryUrl).toBe('https://acme-staging-v02.api.letsencrypt.org/directory');
    const o = await parse(['--acme-directory', 'https://127.0.0.1:14000/dir', '--acme-ca', '/etc/ca.pem', '--acme-email', 'ops@example.com']);
    expect(o.acme).toEqual({ directoryUrl: 'https://127.0.0.1:14000/dir', caFile: '/etc/ca.pem', email: 'ops@example.com' });
    await expect(parse(['--acme-staging', '--acme-directory', 'https://x/dir'])).rejects.toThrow(/give one of them/);
    await expect(parse(['--acme-directory', 'http://x/dir'])).rejects.toThrow(/must be an https:\/\/ URL/);
    await expect(parse(['--acme-email', 'nobody'])).rejects.toThrow(/must be an email address/);
  });
});
