// The certs:* commands: HTTPS certificates per app (automatic over ACME or
// manual) and the operator's default one, redirects and HSTS.
import type { Certs, CertView } from '../../certs/cert-manager.js';

import { json, readInput, table, type CommandDef, type CommandContext } from '../command-table.js';
import { canReach } from '../types.js';
import type { CommandServices } from './services.js';
import { UserError } from '../../errors.js';

const MAX_PEM = 256 * 1024;

export function certsCommands(s: CommandServices, certs: Certs | null): CommandDef[] {
  const need = (): Certs => {
    if (!certs) throw new UserError("HTTPS is off on this server (--https-port off): restart it with '--https-port PORT' to manage certificates");
    return certs;
  };
  const app = (ctx: CommandContext) => s.maestro.apps.get(ctx.args.positional[0]!).name;
  const onOff = (ctx: CommandContext, usage: string): boolean => {
    const v = ctx.args.positional[1];
    if (v !== 'on' && v !== 'off') throw new UserError(`say 'on' or 'off', not '${v}': usage: platformx ${usage}`);
    return v === 'on';
  };
  return [
    {
      name: 'certs', usage: 'certs APP [--json]', summary: "an app's certificates: hosts, issuer, expiry, source, last error",
      access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: (ctx) => {
        const d = need().describe(app(ctx));
        if (ctx.args.flags.json) return json(ctx.io, d);
        const io = ctx.io;
        io.stdout(`${d.app}: automatic ${d.settings.auto ? 'on' : 'off'}, redirect to HTTPS ${d.settings.redirect ? 'on' : 'off'}, HSTS ${d.settings.hsts ? 'on' : 'off'}\n`);
        io.stdout(table([['HOSTS', 'SOURCE', 'ISSUER', 'EXPIRES', 'STATUS'], ...d.certificates.map((c) => [c.hosts.join(','), c.source, c.issuer ?? '-', c.notAfter ?? '-', status(c)])]));
      },
    },
    {
      name: 'certs:auto', usage: 'certs:auto APP [--off]', summary: "certificates from the ACME CA for the app's domains (kept renewed)",
      access: 'admin', minArgs: 1, maxArgs: 1, flags: { off: 'bool' },
      run: async (ctx) => {
        const c = need();
        const name = app(ctx);
        if (ctx.args.flags.off) {
          c.disableAuto(name);
          ctx.io.stdout(`Automatic certificates off for ${name}; its automatic certificates are retired\n`);
          return;
        }
        const hosts = await c.enableAuto(name);
        if (hosts.length === 0) {
          ctx.io.stdout(`Automatic certificates on for ${name}, but it has no domain a public CA can check: add one with 'platformx domains:add ${name} HOST'\n`);
          return;
        }
        const views = c.describe(name).certificates.filter((v) => v.source === 'auto');
        let failed = 0;
        for (const v of views) {
          if (v.notAfter && !v.lastError) ctx.io.stdout(`${v.hosts.join(', ')}: certificate from ${v.issuer}, expires ${v.notAfter}\n`);
          else {
            failed++;
            ctx.io.stderr(`${v.hosts.join(', ')}: no certificate yet: ${v.lastError ?? 'pending'}; next try at ${v.nextAttempt ?? 'soon'} (until then it is served as before)\n`);
          }
        }
        return failed ? 1 : 0;
      },
    },
    {
      name: 'certs:add', usage: 'certs:add (APP | --default) --cert FILE --key FILE', summary: 'add a manual certificate (chain and key), or the default one',
      access: 'any', maxArgs: 1, flags: { default: 'bool', cert: 'string', key: 'string' },
      run: async (ctx) => {
        const c = need();
        if (ctx.args.flags.cert !== undefined || ctx.args.flags.key !== undefined) {
          // Reading a path here would read the server's files; the local CLI reads them on the user's side.
          throw new UserError('--cert and --key are read by the local platformx CLI; over SSH send the certificate chain and key on stdin: ssh … certs:add APP < bundle.pem');
        }
        const asDefault = ctx.args.flags.default === true;
        const target = ctx.args.positional[0];
        if (asDefault === (target !== undefined)) throw new UserError('name an APP or give --default: usage: platformx certs:add (APP | --default) --cert FILE --key FILE');
        if (asDefault && !ctx.caller.admin) throw new UserError("'certs:add --default' needs an admin key: this key may only use its own apps");
        if (target !== undefined && !canReach(ctx.caller, target)) throw new UserError(`app '${target}' does not exist`);
        const pem = await readInput(ctx.io.stdin, MAX_PEM, 'input too long: give one certificate chain and its key');
        const cert = asDefault ? c.addDefault(pem) : c.addManual(s.maestro.apps.get(target!).name, pem);
        ctx.io.stdout(`Added ${asDefault ? 'the default certificate' : `a certificate to ${target}`}: ${cert.hosts.join(', ')} (issuer ${cert.issuer}, expires ${cert.notAfter.toISOString()})\n`);
      },
    },
    {
      name: 'certs:remove', usage: 'certs:remove APP', summary: "remove an app's manual certificate", access: 'app', minArgs: 1, maxArgs: 1,
      run: (ctx) => {
        need().removeManual(app(ctx));
        ctx.io.stdout(`Removed the manual certificate of ${ctx.args.positional[0]}\n`);
      },
    },
    {
      name: 'certs:redirect', usage: 'certs:redirect APP on|off', summary: 'plain HTTP gets 308 to HTTPS once a certificate is valid (default on)',
      access: 'app', minArgs: 2, maxArgs: 2,
      run: (ctx) => {
        const on = onOff(ctx, 'certs:redirect APP on|off');
        need().setRedirect(app(ctx), on);
        ctx.io.stdout(`Redirect to HTTPS ${on ? 'on' : 'off'} for ${ctx.args.positional[0]}\n`);
      },
    },
    {
      name: 'certs:hsts', usage: 'certs:hsts APP on|off', summary: 'Strict-Transport-Security on HTTPS answers (default off)',
      access: 'app', minArgs: 2, maxArgs: 2,
      run: (ctx) => {
        const on = onOff(ctx, 'certs:hsts APP on|off');
        need().setHsts(app(ctx), on);
        ctx.io.stdout(`HSTS ${on ? 'on' : 'off'} for ${ctx.args.positional[0]}\n`);
      },
    },
  ];
}

function status(c: CertView): string {
  if (c.lastError) return `failing since ${c.lastErrorAt}: ${c.lastError}; next try ${c.nextAttempt}`;
  if (c.source === 'auto') return c.notAfter ? `renews ${c.renewAt}` : 'pending';
  return 'ok';
}
