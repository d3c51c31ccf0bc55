import type { CouchService, DatabaseInfo } from '../../couchdb/couch-service.js';

import { json, table, type CommandDef } from '../command-table.js';
import { startingProcesses, toStdout } from './services.js';
import { UserError } from '../../errors.js';

/** couchdb:create, couchdb:info, couchdb:destroy: a CouchDB database per app, like a Heroku add-on. */
export function couchdbCommands(couch: CouchService | null): CommandDef[] {
  const service = (): CouchService => {
    if (!couch) throw new UserError("the data layer is off on this server (--couchdb off): start it without that option to give apps databases");
    return couch;
  };
  return [
    {
      name: 'couchdb:create', usage: 'couchdb:create APP', summary: 'make the app a CouchDB database; sets COUCHDB_URL (zero-downtime restart)',
      access: 'app', minArgs: 1, maxArgs: 1,
      run: async ({ args, io }) => {
        const app = args.positional[0]!;
        const r = await startingProcesses(app, service().create(app, [toStdout(io)]));
        if (r.replicaNote) io.stderr(`note: ${r.replicaNote}\n`);
        io.stdout(`${r.created ? 'Created' : 'Attached'} database ${app}; COUCHDB_URL is set${r.release === null ? '' : `: v${r.release} is live`} (see it with 'platformx config:get ${app} COUCHDB_URL')\n`);
      },
    },
    {
      name: 'couchdb:info', usage: 'couchdb:info APP [--json]', summary: "the app's database: which server it uses, replication",
      access: 'app', minArgs: 1, maxArgs: 1, flags: { json: 'bool' },
      run: async ({ args, io }) => {
        const info = await service().info(args.positional[0]!);
        if (args.flags.json) return json(io, info);
        io.stdout(table(infoRows(info)));
      },
    },
    {
      name: 'couchdb:destroy', usage: 'couchdb:destroy APP --confirm APP [--replica-too]', summary: "delete the app's database (the replica's copy stays unless --replica-too)",
      access: 'app', minArgs: 1, maxArgs: 1, flags: { confirm: 'string', 'replica-too': 'bool' },
      run: async ({ args, io }) => {
        const app = args.positional[0]!;
        if (args.flags.confirm !== app) throw new UserError(`destroying the database of '${app}' deletes its documents: repeat the name with --confirm ${app}`);
        const replicaToo = args.flags['replica-too'] === true;
        await startingProcesses(app, service().destroy(app, replicaToo, [toStdout(io)]));
        io.stdout(`Destroyed database ${app}${replicaToo ? ' and its replica copy' : ''}; COUCHDB_URL is unset\n`);
      },
    },
  ];
}

function infoRows(i: DatabaseInfo): string[][] {
  const up = (x: { server: string; up: boolean }) => `${x.server} (${x.up ? 'up' : 'DOWN'})`;
  const r = i.replication;
  const pending = r?.pending === null || !r ? 'not measured yet' : `${r.pending}${r.pendingAtLeast ? '+' : ''}`;
  return [
    ['database:', i.database],
    ['primary:', up(i.primary)],
    ['replica:', i.replica ? up(i.replica) : 'none (--couchdb-replica not set)'],
    ['using:', i.using],
    ['failover:', i.failover],
    ...(r ? [
      ['replication:', `${r.direction}: ${r.state}`],
      ['waiting:', `${pending} document(s)`],
      ['last replicated:', r.lastReplicatedAt ?? '-'],
    ] : []),
    ...(i.error ? [['error:', i.error]] : []),
  ];
}
