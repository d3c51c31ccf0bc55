// The proxy's routing decision for one request, without sockets.
import { describe, expect, it } from 'vitest';
import { DrainTracker } from '../src/proxy/drain-tracker.js';
import { decideRoute } from '../src/proxy/route-decision.js';
import { RouteTable } from '../src/proxy/route-table.js';

function table(): RouteTable {
  const t = new RouteTable(new DrainTracker());
  t.setHosts('shop', ['shop.localhost', 'www.shop.example']);
  t.setBackends('shop', [4100]);
  t.setHosts('idle', ['idle.localhost']);
  t.setBackends('idle', []);
  return t;
}

describe('decideRoute', () => {
  const t = table();
  const decide = (host: string, path = '/', method = 'GET') => decideRoute(t, method, path, host, 'localhost');

  it('forwards an app host to a backend, whatever the case and port of the Host header', () => {
    for (const host of ['shop.localhost', 'WWW.Shop.Example', 'www.shop.example:8000']) {
      const d = decide(host);
      expect(d.kind === 'forward' && [d.app, d.backend.port]).toEqual(['shop', 4100]);
    }
  });

  it('answers the platform ping on machine names, and lets an app have its own /_ping_', () => {
    for (const host of ['127.0.0.1:8000', 'localhost', '[::1]:80', 'nobody.example']) expect(decide(host, '/_ping_').kind).toBe('pong');
    expect(decide('shop.localhost', '/_ping_').kind).toBe('forward');
    // Only GET /_ping_ is the platform's.
    expect(decide('127.0.0.1', '/_ping_', 'POST')).toEqual({ kind: 'unknown-host', hostname: '127.0.0.1' });
  });

  it('names an unknown host without its port, and an app with no process', () => {
    expect(decide('other.example:8000')).toEqual({ kind: 'unknown-host', hostname: 'other.example' });
    expect(decide('idle.localhost')).toEqual({ kind: 'no-backend', app: 'idle' });
  });
});
