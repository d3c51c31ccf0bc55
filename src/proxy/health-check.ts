// The legacy Maestro load-balancer health check: `GET /_ping_` answers pong
// from the proxy itself for every Host that cannot be an app's own name, so
// no tenant can answer (or fail) the platform's health check by registering
// the address a load balancer sends as Host.

import { hostname } from './route-table.js';

export const PING_PATH = '/_ping_';

/** True when the proxy answers this request itself; `routed` says whether the Host names an app. */
export function isPlatformPing(method: string | undefined, path: string, hostHeader: string, routed: boolean, baseDomain: string): boolean {
  if (path !== PING_PATH || method !== 'GET') return false;
  return !routed || isPlatformHost(hostHeader, baseDomain);
}

/** A last label that makes a host an IPv4 address to URL parsers: 127.0.0.1, 2130706433, 127.1, 0x7f.1. */
const IPV4_TAIL = /(?:^|\.)(?:\d+|0x[0-9a-f]*)$/;

/** IP literals, localhost and the base domain itself name the machine, never an app. */
export function isPlatformHost(hostHeader: string, baseDomain: string): boolean {
  let h = hostname(hostHeader).toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h === '' || h === 'localhost' || h === baseDomain || h.charCodeAt(0) === 91 /* [ IPv6 */ || IPV4_TAIL.test(h);
}
