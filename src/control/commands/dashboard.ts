import { LOGIN_TTL_MS, type DashboardAuth } from '../../dashboard/auth.js';
import type { MetricsToken } from '../../metrics/metrics-token.js';

import type { CommandDef } from '../command-table.js';
import type { ServerInfo } from './services.js';
import { UserError } from '../../errors.js';

export interface DashboardCommandServices {
  auth: DashboardAuth;
  metricsToken: MetricsToken;
  info: () => ServerInfo;
}

/** The dashboard's address as a browser on this machine reaches it, or null when it is off. */
export function dashboardUrl(info: ServerInfo): string | null {
  if (info.dashboardPort === null) return null;
  const host = info.host === '0.0.0.0' ? '127.0.0.1' : info.host === '::' ? '::1' : info.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${info.dashboardPort}`;
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

export function dashboardCommands(d: DashboardCommandServices): CommandDef[] {
  return [
    {
      name: 'dashboard:login', usage: 'dashboard:login', summary: 'print a one-time URL that signs a browser in to the dashboard', access: 'admin', maxArgs: 0,
      run: ({ io, caller }) => {
        const base = dashboardUrl(d.info());
        if (!base) throw new UserError("the dashboard is off: start the server with --dashboard-port PORT (8002 by default, not 'off')");
        io.stdout(`${base}/login/${d.auth.issueLogin(caller)}\n`);
        const port = d.info().dashboardPort;
        io.stderr(`Open it within ${LOGIN_TTL_MS / 60_000} minutes; it works once.` +
          (isLoopback(d.info().host) ? ` From another machine, forward the port first: ssh -L ${port}:localhost:${port} SERVER\n` : '\n'));
      },
    },
    {
      name: 'metrics:token', usage: 'metrics:token [--rotate]', summary: 'make the bearer token Prometheus reads /metrics with (shown once)', access: 'admin', maxArgs: 0, flags: { rotate: 'bool' },
      run: ({ args, io }) => {
        const secret = d.metricsToken.issue(args.flags.rotate === true);
        io.stdout(`${secret}\n`);
        const base = dashboardUrl(d.info());
        io.stderr(`Shown once, only its hash is kept. Scrape ${base ?? 'the dashboard port'}/metrics with 'Authorization: Bearer TOKEN' (Prometheus: authorization.credentials).\n`);
      },
    },
  ];
}
