// The gateway's allow-list and the data layer's server options, as pure
// functions: each rule, and the tricks that would get around one.
import { describe, expect, it } from 'vitest';
import { classify } from '../src/couchdb/gateway-paths.js';
import { describeEndpoint } from '../src/couchdb/couch-url.js';
import { parseServerOptions } from '../src/server/server-options.js';

const allowed = (method: string, url: string) => {
  const v = classify(method, url, 'app');
  return 'allow' in v && v.allow ? v.path + v.query : null;
};
const status = (method: string, url: string) => {
  const v = classify(method, url, 'app');
  return 'allow' in v ? (v.allow ? 200 : v.status) : 'welcome';
};

describe('the gateway allow-list', () => {
  it("serves the app's documents, attachments, queries, views and indexes", () => {
    for (const [m, u] of [
      ['GET', '/app'], ['GET', '/app/'], ['POST', '/app'], ['GET', '/app/doc'], ['PUT', '/app/doc'], ['DELETE', '/app/doc?rev=1-a'],
      ['GET', '/app/doc/file.txt'], ['PUT', '/app/doc/dir/file.txt'], ['GET', '/app/_all_docs?include_docs=true'], ['POST', '/app/_all_docs'],
      ['GET', '/app/_changes?since=0&feed=longpoll'], ['POST', '/app/_find'], ['POST', '/app/_bulk_docs'], ['POST', '/app/_bulk_get'],
      ['GET', '/app/_design/d'], ['PUT', '/app/_design/d'], ['GET', '/app/_design/d/_view/v?key=1'], ['POST', '/app/_design/d/_view/v'],
      ['GET', '/app/_index'], ['POST', '/app/_index'], ['DELETE', '/app/_index/d/json/n'], ['DELETE', '/app/_index/_design/d/json/n'],
      ['GET', '/app/_local/ck'], ['PUT', '/app/_local/ck'], ['POST', '/app/_revs_diff'],
    ] as const) expect([m, u, status(m, u)]).toEqual([m, u, 200]);
  });

  it('refuses everything else, on the database and beside it', () => {
    for (const [m, u, s] of [
      ['GET', '/_all_dbs', 403], ['GET', '/_users', 403], ['GET', '/_replicator/x', 403], ['GET', '/_config', 403], ['PUT', '/_config/admins/x', 403],
      ['GET', '/_session', 403], ['POST', '/_replicate', 403], ['GET', '/other', 403], ['GET', '/other/doc', 403], ['GET', '/appx', 403],
      ['PUT', '/app', 403], ['DELETE', '/app', 403], ['GET', '/app/_security', 403], ['PUT', '/app/_security', 403], ['POST', '/app/_compact', 403],
      ['POST', '/app/_temp_view', 403], ['POST', '/app/_purge', 403], ['GET', '/app/_design/d/_show/s', 403], ['GET', '/app/_design/d/_list/l/v', 403],
      ['PUT', '/app/_design/d/_update/u', 403], ['GET', '/app/_design/d/_rewrite/x', 403], ['GET', '/app/_design/d/_info', 403],
      ['COPY', '/app/doc', 405], ['POST', '/app/doc', 405], ['GET', '/app/_find', 405], ['GET', '/app/_bulk_docs', 405], ['GET', '/app/_index/d/json/n', 405],
      ['GET', '/app/_all_docs/x', 403], ['GET', '/app/_local/a/b', 403], ['GET', '/app/_design', 403], ['POST', '/', 403],
    ] as const) expect([m, u, status(m, u)]).toEqual([m, u, s]);
    expect(status('GET', '/')).toBe('welcome');
  });

  it('reads the path as CouchDB does and sends on what it checked, re-encoded', () => {
    // An escaped slash in the first segment is a database named 'app/x', not this one.
    expect(status('GET', '/app%2Fx')).toBe(403);
    expect(status('GET', '/%61pp/doc')).toBe(200);
    expect(allowed('GET', '/%61pp/doc')).toBe('/app/doc');
    // _design%2Fd is the design document _design/d, with its rules.
    expect(status('GET', '/app/_design%2Fd/_show/s')).toBe(403);
    expect(allowed('GET', '/app/_design%2Fd/_view/v')).toBe('/app/_design/d/_view/v');
    // A document id with a slash stays one segment.
    expect(allowed('GET', '/app/a%2Fb')).toBe('/app/a%2Fb');
    for (const u of ['/app/../_users', '/app/%2e%2e/_users', '/app//doc', '/app/./doc', '/app/%zz', 'app/doc']) expect([u, status('GET', u)]).toEqual([u, 400]);
    expect(allowed('GET', '/app/doc?rev=1-a&attachments=true')).toBe('/app/doc?rev=1-a&attachments=true');
  });

  it('marks what the embedded server cannot run: JavaScript filters and design document writes', () => {
    const v = (m: string, u: string) => classify(m, u, 'app') as { jsFilter: boolean; designWrite: boolean };
    expect(v('GET', '/app/_changes?filter=d/f').jsFilter).toBe(true);
    expect(v('GET', '/app/_changes?filter=_view&view=d/v').jsFilter).toBe(true);
    expect(v('GET', '/app/_changes?filter=_selector').jsFilter).toBe(false);
    expect(v('GET', '/app/_changes?filter=_doc_ids&filter=d/f').jsFilter).toBe(true);
    expect(v('PUT', '/app/_design/d').designWrite).toBe(true);
    expect(v('PUT', '/app/_design%2Fd').designWrite).toBe(true);
    expect(v('GET', '/app/_design/d').designWrite).toBe(false);
  });
});

describe('server options', () => {
  const couch = (argv: string[]) => parseServerOptions(argv, {}).couchdb;
  it('default to the embedded server, a gateway port kept from before, no replica', () => {
    expect(couch([])).toEqual({ primary: null, replica: null, gatewayPort: 0, pouchdbServerDir: null });
    expect(couch(['--couchdb', 'off'])).toBeNull();
  });

  it('read URLs with credentials, and never echo one in an error', () => {
    const c = couch(['--couchdb', 'http://admin:s%40cret@127.0.0.1:5984', '--couchdb-replica', 'https://u:p@127.0.0.1:6984/db-root/', '--couchdb-gateway-port', '5990'])!;
    expect(c.primary).toEqual({ origin: 'http://127.0.0.1:5984', base: '', user: 'admin', password: 's@cret' });
    expect(c.replica).toEqual({ origin: 'https://127.0.0.1:6984', base: '/db-root', user: 'u', password: 'p' });
    expect(describeEndpoint(c.primary!)).toBe('http://127.0.0.1:5984 (as admin)');
    expect(c.gatewayPort).toBe(5990);
    for (const [argv, message] of [
      [['--couchdb', 'mysecret'], "--couchdb must be 'embedded', 'off' or a URL like http://admin:PASSWORD@127.0.0.1:5984"],
      [['--couchdb-replica', 'ftp://a:mysecret@x'], '--couchdb-replica must be an http:// or https:// URL, not ftp:'],
      [['--couchdb-replica', 'http://a:mysecret@127.0.0.1:1/?x=1'], "--couchdb-replica must not have a query or fragment: give the server's URL, like http://admin:PASSWORD@127.0.0.1:5984"],
      [['--couchdb', 'off', '--couchdb-replica', 'http://a:mysecret@127.0.0.1:1'], '--couchdb-replica needs a primary: drop --couchdb off, or the replica'],
      [['--couchdb-gateway-port', 'x'], "--couchdb-gateway-port must be a port number 0-65535, not 'x'"],
    ] as const) {
      let got = '';
      try {
        couch([...argv]);
      } catch (err) {
        got = (err as Error).message;
      }
      expect(got).toBe(message);
    }
  });
});
