// What the proxy does with one request once its headers for the app are made:
// answer it itself (the platform's ping, an unknown host, an app with no
// process) or forward it to one of the app's backends. Pure: no socket, no
// response, so each outcome is unit-tested (test/proxy-route-decision.test.ts).

import type { PortLoad } from './drain-tracker.js';
import { isPlatformPing } from './health-check.js';
import { RouteTable, hostname, type AppRoute } from './route-table.js';

export type RouteDecision =
  | { kind: 'pong' }
  | { kind: 'unknown-host'; hostname: string }
  | { kind: 'no-backend'; app: string }
  | { kind: 'forward'; app: string; backend: PortLoad };

export function decideRoute(
  table: Pick<RouteTable, 'lookup'>, method: string | undefined, path: string, host: string, baseDomain: string,
): RouteDecision {
  const route: AppRoute | undefined = table.lookup(host);
  if (isPlatformPing(method, path, host, route !== undefined, baseDomain)) return { kind: 'pong' };
  if (!route) return { kind: 'unknown-host', hostname: hostname(host) };
  const backend = RouteTable.pick(route);
  return backend ? { kind: 'forward', app: route.app, backend } : { kind: 'no-backend', app: route.app };
}
