/**
 * What an app may ask of its database through the gateway: its documents and
 * attachments, `_all_docs`, `_changes`, `_find`, `_bulk_docs`, `_bulk_get`,
 * views, `_index`, and `_local` checkpoints with `_revs_diff` for replication
 * clients (the subset Cloudant serves too). Everything else, on its database or
 * beside it, is refused. A pure function of the request line, so each rule has
 * a test without a server.
 */

export type Verdict =
  | {
      allow: true;
      /** The path re-encoded from its decoded segments: what was checked is what is sent. */
      path: string;
      query: string;
      /** PUT of a design document: its body is the document (the embedded server refuses JavaScript ones). */
      designWrite: boolean;
      /** `_changes` with a JavaScript filter of the app's (the embedded server cannot run one). */
      jsFilter: boolean;
    }
  | { allow: false; status: number; error: string; reason: string }
  | { welcome: true };

const READ = ['GET', 'HEAD'];

/** Routes under the database: first segment → methods allowed. */
const SPECIAL: Record<string, string[]> = {
  _all_docs: ['GET', 'HEAD', 'POST'],
  _changes: ['GET', 'HEAD', 'POST'],
  _find: ['POST'],
  _bulk_docs: ['POST'],
  _bulk_get: ['POST'],
  _revs_diff: ['POST'],
};

/** Filters that run no JavaScript of the app's (`_view` runs a view's map function). */
const BUILTIN_FILTERS = new Set(['_doc_ids', '_selector', '_design']);

export function classify(method: string, rawUrl: string, db: string): Verdict {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = q < 0 ? '' : rawUrl.slice(q);
  if (!rawPath.startsWith('/')) return refuse(400, 'bad_request', 'the path must start with /');
  let segs: string[];
  try {
    segs = rawPath.slice(1).split('/').map((s) => decodeURIComponent(s));
  } catch {
    return refuse(400, 'bad_request', 'the path has a malformed %-escape');
  }
  if (segs.length === 1 && segs[0] === '') return READ.includes(method) ? { welcome: true } : notMine(db);
  if (segs[0] !== db) return notMine(db);
  if (segs.length === 2 && segs[1] === '') segs.pop();
  // `_design%2Fname` names the design document `_design/name`, as CouchDB reads it.
  if (segs[1] && /^_(design|local)\//.test(segs[1])) segs.splice(1, 1, ...splitOnce(segs[1]));
  if (segs.some((s) => s === '' || s === '.' || s === '..')) return refuse(400, 'bad_request', "the path has an empty, '.' or '..' segment");
  const rest = segs.slice(1);
  const pass = (): Verdict => ({
    allow: true, path: encodePath([db, ...rest]), query, jsFilter: jsFilter(rest, query),
    designWrite: method === 'PUT' && rest.length === 2 && rest[0] === '_design',
  });
  const methods = (allowed: string[]): Verdict =>
    allowed.includes(method) ? pass() : refuse(405, 'method_not_allowed', `${method} is not allowed on ${describe(rest)}`);

  if (rest.length === 0) {
    if (method === 'PUT' || method === 'DELETE') return refuse(403, 'forbidden', "the platform creates and deletes the database: use 'platformx couchdb:create' or 'couchdb:destroy'");
    return methods([...READ, 'POST']);
  }
  const [first, second, third] = rest as [string, string?, string?];
  if (Object.hasOwn(SPECIAL, first)) {
    if (rest.length !== 1) return forbidden(rest);
    return methods(SPECIAL[first]!);
  }
  if (first === '_index') {
    if (rest.length === 1) return methods([...READ, 'POST']);
    // DELETE /db/_index/DDOC/json/NAME, the design document with or without its prefix.
    const tail = rest[1] === '_design' ? rest.slice(2) : rest.slice(1);
    if (tail.length === 3 && tail[1] === 'json') return methods(['DELETE']);
    return forbidden(rest);
  }
  if (first === '_local') return rest.length === 2 ? methods([...READ, 'PUT', 'DELETE']) : forbidden(rest);
  if (first === '_design') {
    if (!second) return forbidden(rest);
    if (rest.length === 2) return methods([...READ, 'PUT', 'DELETE']);
    if (third === '_view') return rest.length === 4 ? methods([...READ, 'POST']) : forbidden(rest);
    // _show, _list, _update, _rewrite (which can reach other databases), _info …
    if (third!.startsWith('_')) return forbidden(rest);
    return methods([...READ, 'PUT', 'DELETE']);
  }
  if (first.startsWith('_')) return forbidden(rest);
  // A document and its attachments. COPY is not among them: its Destination header names another document.
  return methods([...READ, 'PUT', 'DELETE']);
}

function splitOnce(s: string): string[] {
  const i = s.indexOf('/');
  return [s.slice(0, i), s.slice(i + 1)];
}

function encodePath(segs: string[]): string {
  return '/' + segs.map((s) => encodeURIComponent(s)).join('/');
}

function describe(rest: string[]): string {
  return rest.length ? rest.join('/') : 'the database';
}

/** A `_changes` request whose filter is JavaScript of the app's. */
function jsFilter(rest: string[], query: string): boolean {
  if (rest[0] !== '_changes') return false;
  const filter = new URLSearchParams(query.slice(1)).getAll('filter');
  return filter.some((f) => !BUILTIN_FILTERS.has(f));
}

function refuse(status: number, error: string, reason: string): Verdict {
  return { allow: false, status, error, reason };
}

function forbidden(rest: string[]): Verdict {
  return refuse(403, 'forbidden', `${describe(rest)} is not served to apps: documents, _all_docs, _changes, _find, _bulk_docs, _bulk_get, views and _index are`);
}

/** Every other database and every server-wide path answers alike: nothing says what exists. */
function notMine(db: string): Verdict {
  return refuse(403, 'forbidden', `these credentials reach only the database '${db}'`);
}
