// The embedded CouchDB's process: PouchDB Server, loaded from its install
// folder, with JavaScript from strings switched off once it has loaded.
//
//   node dist/couchdb/embedded-main.js INSTALL_DIR [pouchdb-server options…]
//
// PouchDB Server runs design documents' functions (views, filters,
// validate_doc_update, shows, lists, updates) with eval or node:vm inside its
// own process, and node:vm is no sandbox: one app's view could read every
// other app's database. So both are switched off before it loads: eval of a
// string and every vm call throw. (Its dependencies' own `new Function` at
// load time takes no input from a request, and is left alone.) Mango
// (_find, _index) needs none of them.
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

const NO_JAVASCRIPT = 'JavaScript in design documents is switched off on the embedded CouchDB (node:vm is no sandbox): use _find and _index, or run the platform with --couchdb pointing at Apache CouchDB';

function refuse(): never {
  throw new Error(NO_JAVASCRIPT);
}

/** The two ways PouchDB Server and its plugins turn a design document's text into code. */
function switchOffStringCode(): void {
  for (const name of ['runInNewContext', 'runInContext', 'runInThisContext', 'compileFunction', 'createScript'] as const) {
    (vm as unknown as Record<string, unknown>)[name] = refuse;
  }
  (vm as unknown as Record<string, unknown>).Script = function Script() {
    refuse();
  };
  // eval of anything but a string returns it (bluebird relies on that).
  (globalThis as unknown as Record<string, unknown>).eval = (x: unknown) => (typeof x === 'string' ? refuse() : x);
}

const [installDir, ...args] = process.argv.slice(2);
if (!installDir) {
  process.stderr.write('usage: embedded-main.js INSTALL_DIR [pouchdb-server options]\n');
  process.exit(2);
}
const require = createRequire(path.join(installDir, 'package.json'));
const bin = require.resolve('pouchdb-server/bin/pouchdb-server');
switchOffStringCode();
process.argv = [process.argv[0]!, bin, ...args];
require(bin);
