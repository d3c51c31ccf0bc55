// The embedded CouchDB's process: PouchDB Server, loaded from its install
// folder, with JavaScript from strings switched off once it has loaded.
//
//   node dist/couchdb/embedded-main.js INSTALL_DIR [pouchdb-server options…]
//
// PouchDB Server runs design documents' functions (views, filters,
// validate_doc_update, shows, lists, updates) with eval or node:vm inside its
// own process, and node:vm is no sandbox: one app's view could read every
// other app's database. So the parts that run such functions on their own
// (validation, shows, lists, updates, rewrites, temporary views) are left out
// of it, and eval of a string and every vm call throw, for views and filters.
// (Its dependencies' own `new Function` at load time takes no input from a
// request, and is left alone.) Mango (_find, _index) needs none of them.
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

const NO_JAVASCRIPT = 'JavaScript in design documents is switched off on the embedded CouchDB (node:vm is no sandbox): use _find and _index, or run the platform with --couchdb pointing at Apache CouchDB';

function refuse(): never {
  throw new Error(NO_JAVASCRIPT);
}

/**
 * The two ways PouchDB Server and its plugins turn a design document's text
 * into code. Only `trusted` programs pass: PouchDB Server's own validation of
 * its `_replicator` database (no app can write there), exactly as it ships.
 */
function switchOffStringCode(trusted: ReadonlySet<string>): void {
  for (const name of ['runInNewContext', 'runInContext', 'runInThisContext', 'compileFunction', 'createScript'] as const) {
    (vm as unknown as Record<string, unknown>)[name] = refuse;
  }
  (vm as unknown as Record<string, unknown>).Script = function Script() {
    refuse();
  };
  const realEval = globalThis.eval;
  (globalThis as unknown as Record<string, unknown>).eval = (x: unknown) => {
    // eval of anything but a string returns it (bluebird relies on that).
    if (typeof x !== 'string') return x;
    // couchdb-eval's wrapper, whole: parameter names, then the program, nothing around it.
    const m = /^\(function \(([\w$, ]*)\) \{return ([\s\S]*)\}\)$/.exec(x);
    if (m && trusted.has(m[2]!)) return realEval(x);
    refuse();
  };
}

/** express-pouchdb parts that run design documents' functions (the _replicator's own validation included: it is not needed). */
const LEFT_OUT = ['validation', 'routes/show', 'routes/list', 'routes/update', 'routes/rewrite', 'routes/temp-views', 'routes/fauxton'];

/** PouchDB Server builds its express-pouchdb app without the parts above. */
function leaveOutCodeRunners(require: NodeRequire): void {
  const file = require.resolve('express-pouchdb');
  const expressPouchdb = require(file) as (opts?: Record<string, unknown>) => unknown;
  const wrapped = (opts: Record<string, unknown> = {}) => expressPouchdb({ ...opts, overrideMode: { exclude: LEFT_OUT } });
  require.cache[file]!.exports = wrapped;
}

const [installDir, ...args] = process.argv.slice(2);
if (!installDir) {
  process.stderr.write('usage: embedded-main.js INSTALL_DIR [pouchdb-server options]\n');
  process.exit(2);
}
const require = createRequire(path.join(installDir, 'package.json'));
const bin = require.resolve('pouchdb-server/bin/pouchdb-server');
// PouchDB Server 4.2.0 predates Node 15, when an unhandled rejection only warned; it leaves
// some (deleting a _replicator document rejects inside its replicator): warn, as it expects.
process.on('unhandledRejection', (reason) => {
  process.stderr.write(`unhandled rejection (ignored, as PouchDB Server expects): ${(reason as Error)?.message ?? String(reason)}\n`);
});
const serverRequire = createRequire(bin);
switchOffStringCode(new Set([(serverRequire('pouchdb-replicator/lib/designdoc.js') as { validate_doc_update: string }).validate_doc_update]));
leaveOutCodeRunners(serverRequire);
process.argv = [process.argv[0]!, bin, ...args];
require(bin);
