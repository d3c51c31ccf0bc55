// Decides whether an `rsync --server …` exec request is a plain upload of a
// bundle into one app's upload folder, and rewrites it into the argv that is
// actually run. Everything not on the lists below is refused: the argv comes
// from the client and the receiver runs on the server.
import { UserError } from '../errors.js';

const APP_NAME = /^[a-z][a-z0-9-]{0,62}$/;
/** Where Maestro 0.3 kept bundles; `rsync … git@HOST:/srv/http/platform.x/applications/APP/` still works. */
export const LEGACY_PREFIX = '/srv/http/platform.x/applications/';
const EXAMPLE = 'rsync -az --delete ./bundle/ git@HOST:APP/';

/**
 * Letters the rsync client packs into its first server argument (`-logDtprze.iLsfxCIvu`)
 * for uploads. Left out on purpose: s (protect-args: the real argv would then come
 * over the wire, unchecked), R (relative: absolute names from the sender), K (keep-dirlinks:
 * follows symlinks in the folder), A and X (ACLs, xattrs: security.* attributes as root),
 * k and L (sender-side only), and anything else.
 */
const SHORT_FLAGS = new Set([...'vqlogDtprzcInuybHOJxmSWCUd']);

/** Long options an upload sends, without a value. */
const LONG_FLAGS = new Set([
  '--delete', '--delete-before', '--delete-during', '--delete-delay', '--delete-after', '--delete-excluded',
  '--delete-missing-args', '--force', '--ignore-errors', '--partial', '--inplace', '--append', '--delay-updates',
  '--existing', '--ignore-existing', '--size-only', '--numeric-ids', '--stats', '--fsync', '--preallocate',
  '--open-noatime', '--mkpath', '--use-qsort', '--msgs2stderr', '--old-compress', '--new-compress', '--safe-links',
  '--copy-unsafe-links',
]);

const NUMBER = /^\d{1,12}(?:\.\d{1,6})?[KMGkmg]?$/;
/** Long options with a value (`--name=value`), each with the values it may take. */
const LONG_VALUES: Record<string, RegExp> = {
  '--compress-level': /^\d{1,2}$/,
  '--bwlimit': NUMBER,
  '--timeout': /^\d{1,6}$/,
  '--modify-window': /^-?\d{1,6}$/,
  '--max-size': NUMBER,
  '--min-size': NUMBER,
  '--max-delete': /^-?\d{1,9}$/,
  '--checksum-seed': /^\d{1,10}$/,
  '--checksum-choice': /^[a-z0-9]{1,16}(?:,[a-z0-9]{1,16})?$/,
  '--compress-choice': /^[a-z0-9]{1,16}$/,
  // --progress, -i and --out-format make the client send one of these; they only shape messages.
  '--log-format': /^[%A-Za-z]{1,16}$/,
  '--info': /^[A-Za-z0-9,]{1,128}$/,
};

/** Said for options that would read or write outside the upload folder, or change who runs what. */
const WHY_REFUSED: Record<string, string> = {
  '--sender': 'downloads are not offered: rsync can only upload a bundle to APP/',
  '--log-file': 'a log file would be written outside the upload folder',
  '--rsh': 'the server does not start other connections',
  '--rsync-path': 'the server runs its own rsync',
  '--files-from': 'it reads a file list from a path on the server',
  '--remove-source-files': 'the server never deletes the files it sends',
  '--temp-dir': 'temporary files stay inside the upload folder',
  '--partial-dir': 'partial files stay inside the upload folder',
  '--backup-dir': 'backups would be written outside the upload folder',
  '--link-dest': 'it reads files outside the upload folder',
  '--copy-dest': 'it reads files outside the upload folder',
  '--compare-dest': 'it reads files outside the upload folder',
  '--super': 'the receiver does not act as root',
  '--iconv': 'file names are taken as they are',
  '--usermap': 'file owners are set by the server',
  '--groupmap': 'file owners are set by the server',
  '--daemon': 'there is no rsync daemon here',
};

export interface RsyncUpload {
  app: string;
  /** The argv to run (argv[0] is "rsync"): checked options plus confinement, then ". UPLOAD_DIR/". */
  argv: string[];
}

export class RsyncRefused extends UserError {
  constructor(reason: string) {
    super(`rsync refused: ${reason}`);
    this.name = 'RsyncRefused';
  }
}

function refuseOption(arg: string): never {
  const name = arg.startsWith('--') ? arg.split('=', 1)[0]! : arg;
  const why = WHY_REFUSED[name];
  if (name === '--sender') throw new RsyncRefused(`${WHY_REFUSED['--sender']} (${EXAMPLE})`);
  throw new RsyncRefused(`option '${arg.slice(0, 60)}' is not allowed here${why ? ` (${why})` : ''}: upload with ${EXAMPLE}`);
}

/** `-logDtprze.iLsfxCIvu`: flag letters, then optionally `e` and the protocol capability letters. */
function checkShortFlags(arg: string): void {
  const body = arg.slice(1);
  const e = body.indexOf('e');
  const letters = e < 0 ? body : body.slice(0, e);
  const caps = e < 0 ? '' : body.slice(e + 1);
  if (!/^[.A-Za-z0-9]{0,32}$/.test(caps)) refuseOption(arg);
  for (const c of letters) {
    if (c === 's') throw new RsyncRefused(`--protect-args (-s) is not supported: upload with ${EXAMPLE} (add --old-args if your rsync sends -s by default)`);
    if (!SHORT_FLAGS.has(c)) throw new RsyncRefused(`option '-${c}' is not allowed here: upload with ${EXAMPLE}`);
  }
}

function checkOption(arg: string): void {
  if (/^-B\d{1,9}$/.test(arg)) return; // --block-size, sent as -B1024
  if (/^-[^-]/.test(arg)) return checkShortFlags(arg);
  if (LONG_FLAGS.has(arg)) return;
  const eq = arg.indexOf('=');
  if (eq > 0) {
    const pattern = LONG_VALUES[arg.slice(0, eq)];
    if (pattern && pattern.test(arg.slice(eq + 1))) return;
  }
  refuseOption(arg);
}

/** APP, APP/, /srv/http/platform.x/applications/APP[/] → APP; anything else is refused. */
export function appFromDestination(dest: string): string {
  let p = dest;
  if (p.startsWith(LEGACY_PREFIX)) p = p.slice(LEGACY_PREFIX.length);
  else if (p.startsWith('/') || p.startsWith('~')) {
    throw new RsyncRefused(`destination '${dest}' is outside the upload area: upload to APP/ (${EXAMPLE})`);
  }
  if (p.endsWith('/')) p = p.slice(0, -1);
  if (p === '' || p === '.') throw new RsyncRefused(`no app named in the destination: upload to APP/ (${EXAMPLE})`);
  if (p.split('/').includes('..')) throw new RsyncRefused(`destination '${dest}' leaves the upload folder ('..'): upload to APP/ (${EXAMPLE})`);
  if (p.includes('/')) throw new RsyncRefused(`destination '${dest}' names a folder inside an app: upload the whole bundle to APP/ (${EXAMPLE})`);
  if (!APP_NAME.test(p)) throw new RsyncRefused(`'${p}' is not an app name: upload to APP/ (${EXAMPLE})`);
  return p;
}

/**
 * Checks the argv of an `rsync --server` exec request (argv[0] = "rsync") and
 * returns the app and the argv to run, whose destination is `uploadDir(app)`.
 * Throws RsyncRefused with a one-line reason.
 */
export function parseRsyncUpload(argv: readonly string[], uploadDir: (app: string) => string): RsyncUpload {
  if (argv[0] !== 'rsync' || argv[1] !== '--server') {
    throw new RsyncRefused(`only the rsync client's server mode is accepted: upload with ${EXAMPLE}`);
  }
  const rest = argv.slice(2);
  if (rest.includes('--sender')) refuseOption('--sender');
  // The receiver's argv ends with ". DEST": one destination, no sources.
  const dot = rest.indexOf('.');
  const options = dot < 0 ? rest : rest.slice(0, dot);
  for (const o of options) checkOption(o);
  if (dot < 0 || rest.length !== dot + 2) {
    throw new RsyncRefused(`expected exactly one destination, like APP/: upload with ${EXAMPLE}`);
  }
  if (options.length === 0 || !/^-[^-]/.test(options[0]!)) {
    throw new RsyncRefused(`the request carries no transfer flags: upload with ${EXAMPLE}`);
  }
  const app = appFromDestination(rest[dot + 1]!);
  return { app, argv: ['rsync', '--server', ...options, ...CONFINEMENT, '.', `${uploadDir(app)}/`] };
}

/**
 * Added to every receiver. --munge-links stores each symlink as
 * /rsyncd-munged/TARGET, so nothing the receiver later writes through one can
 * leave the folder; set-id bits are dropped. (Owner, group and device flags must
 * stay as the client sent them, or the wire protocol breaks; see runRsyncReceiver.)
 */
const CONFINEMENT = ['--munge-links', '--chmod=ugo-s'];
