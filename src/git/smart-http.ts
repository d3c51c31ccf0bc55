// Git's smart HTTP protocol for one repository, the way `git http-backend` does
// it: the ref advertisement (GET info/refs?service=…) and the stateless-rpc POST,
// each one git process with a fixed argv whose stdin is the request body and
// whose stdout is the response. Every way a client can abandon or garble a
// request ends in a one-line HTTP error or a closed connection, never in an
// unhandled error: the body is checked (type, encoding, size) before git runs,
// git's own parser judges the pkt-lines, and a client that goes away closes
// git's pipes so git ends on its own, as it does over SSH.
import type { ChildProcess } from 'node:child_process';
import type http from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import zlib from 'node:zlib';
import type { Result } from 'execa';
import { spawnGitService } from './git-service-process.js';
import { protocolVersion } from './git-protocol.js';

export type GitHttpService = 'git-upload-pack' | 'git-receive-pack';

export const GIT_HTTP_SERVICES: readonly GitHttpService[] = ['git-upload-pack', 'git-receive-pack'];

/**
 * Largest request body, counted after gunzip. A fetch negotiation is a list of
 * "have" lines, far below 10 MB; a push carries the pack, capped at 1 GB (what
 * Heroku allows a repository).
 */
export const MAX_BODY_BYTES: Record<GitHttpService, number> = {
  'git-upload-pack': 10 * 1024 * 1024,
  'git-receive-pack': 1024 * 1024 * 1024,
};

/**
 * Longest a git process may run before it is stopped (SIGTERM, then SIGKILL).
 * Generous: a fetch streams a pack to a slow client, and a push runs the whole
 * deploy in its pre-receive hook, waiting for the app's deploy lock first. A
 * push stopped this way ends like one whose pusher hung up.
 */
export const SERVICE_TIMEOUT_MS = {
  advertise: 5 * 60_000,
  'git-upload-pack': 60 * 60_000,
  'git-receive-pack': 2 * 60 * 60_000,
} as const;

export interface ServiceRun {
  service: GitHttpService;
  /** Absolute path of the bare repository. */
  repo: string;
  /** A checked GIT_PROTOCOL value (see git-protocol.ts), passed to git as http-backend does. */
  gitProtocol?: string;
  /** Called with the git process as soon as it is spawned (a push registers its pid). */
  onSpawn?: (child: ChildProcess) => void;
  /** Called when the client hangs up before git has answered in full. */
  onClientGone?: (child: ChildProcess) => void;
}

/** A one-line plain-text answer that closes the connection (the body, if any, is not read). */
export function refuse(res: http.ServerResponse, status: number, message: string, headers: http.OutgoingHttpHeaders = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = message + '\n';
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close', ...headers });
  res.end(body);
}

const NO_CACHE = { expires: 'Fri, 01 Jan 1980 00:00:00 GMT', pragma: 'no-cache', 'cache-control': 'no-cache, max-age=0, must-revalidate' };

const pktLine = (s: string) => (s.length + 4).toString(16).padStart(4, '0') + s;

/** GET info/refs?service=…: the refs and capabilities git advertises to this client. */
export function advertiseRefs(res: http.ServerResponse, run: ServiceRun): void {
  const child = spawnService(run, ['--stateless-rpc', '--advertise-refs', run.repo], SERVICE_TIMEOUT_MS.advertise);
  // Like http-backend: v0/v1 clients expect the service line first; v2 starts with "version 2".
  const preamble = protocolVersion(run.gitProtocol) === 2 ? '' : pktLine(`# service=${run.service}\n`) + '0000';
  relay(child, res, run, `application/x-${run.service}-advertisement`, preamble, () => null);
  child.stdin.end();
}

/** POST /git-upload-pack or /git-receive-pack: one stateless-rpc round. */
export function serveRpc(req: http.IncomingMessage, res: http.ServerResponse, run: ServiceRun): void {
  const expected = `application/x-${run.service}-request`;
  const type = req.headers['content-type'];
  if (type !== expected) return refuse(res, 415, `unsupported content type '${type ?? ''}': ${run.service} takes ${expected}`);
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && !['gzip', 'x-gzip', 'identity'].includes(encoding)) {
    return refuse(res, 415, `unsupported content encoding '${encoding}': send the body as is or gzip-compressed`);
  }
  const max = MAX_BODY_BYTES[run.service];
  const tooLarge = `request body too large: ${run.service} takes at most ${max / 1024 / 1024} MB`;
  if (Number(req.headers['content-length'] ?? 0) > max) return refuse(res, 413, tooLarge);

  const child = spawnService(run, ['--stateless-rpc', run.repo], SERVICE_TIMEOUT_MS[run.service]);
  // The first problem with the body itself (not git's verdict on it), answered if git has not answered yet.
  let bodyError: { status: number; message: string } | null = null;
  const failBody = (status: number, message: string) => {
    bodyError ??= { status, message };
    req.unpipe();
    child.stdin.destroy();
  };
  const limit = new ByteLimit(max, () => failBody(413, tooLarge));
  // A client that aborts mid-body: its socket is gone, the response's close handler ends git.
  req.on('error', () => child.stdin.destroy());
  if (encoding === 'gzip' || encoding === 'x-gzip') {
    const gunzip = zlib.createGunzip();
    gunzip.on('error', (err) => failBody(400, `the request body is not valid gzip (${err.message})`));
    req.pipe(gunzip).pipe(limit);
  } else {
    req.pipe(limit);
  }
  limit.pipe(child.stdin);
  relay(child, res, run, `application/x-${run.service}-result`, '', () => bodyError);
}

function spawnService(run: ServiceRun, args: string[], timeout: number) {
  const child = spawnGitService(run.service, args, { gitProtocol: run.gitProtocol, timeout });
  run.onSpawn?.(child);
  return child;
}

type ServiceProcess = ReturnType<typeof spawnService>;

/**
 * Sends git's stdout as the response, its headers held until git writes its first
 * byte: a git that fails first gets a one-line error naming git's reason instead
 * of an empty 200.
 */
function relay(
  child: ServiceProcess,
  res: http.ServerResponse,
  run: ServiceRun,
  contentType: string,
  preamble: string,
  earlierError: () => { status: number; message: string } | null,
): void {
  const { stdout } = child;
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-2000)));
  const start = () => {
    if (res.headersSent) return;
    res.writeHead(200, { 'content-type': contentType, ...NO_CACHE });
    if (preamble) res.write(preamble);
  };
  stdout.once('data', (first: Buffer) => {
    start();
    res.write(first);
    stdout.pipe(res);
  });
  // The client went away: closing git's pipes ends it (a push cut off mid-way is abandoned through PushSessions).
  res.once('close', () => {
    if (res.writableFinished) return;
    run.onClientGone?.(child);
    child.stdin.destroy();
    stdout.destroy();
    child.stderr.destroy();
  });
  void child.then((outcome) => {
    if (res.headersSent || res.destroyed) return;
    const early = earlierError();
    if (early) return refuse(res, early.status, early.message);
    if (outcome.exitCode === 0) {
      start();
      res.end();
      return;
    }
    refuse(res, 400, `${run.service} refused the request: ${failure(outcome, stderr, run.repo)}`);
  }).catch(() => {
    // An answer that cannot be written ends this request only, never as an unhandled rejection of the server.
    res.destroy();
  });
}

/** Why git failed, in one line: the reason it gave, else how it ended. */
function failure(outcome: Result, stderr: string, repo: string): string {
  if (outcome.timedOut) return `it ran longer than ${Math.round(outcome.durationMs / 60_000)} minutes and was stopped`;
  if (outcome.exitCode === undefined && outcome.signal === undefined) return `cannot start it (${outcome.originalMessage ?? outcome.shortMessage})`;
  // The repository's path is the server's business, not the client's.
  return lastFatal(stderr)?.split(repo).join('the repository') ?? `it exited with code ${outcome.exitCode ?? 'signal'}`;
}

/** git's last "fatal: …" or "error: …" line, without the prefix. */
function lastFatal(stderr: string): string | null {
  const lines = stderr.split('\n').map((l) => l.trim()).filter((l) => /^(fatal|error): /.test(l));
  const last = lines.at(-1);
  return last ? last.replace(/^(fatal|error): /, '') : null;
}

/** Passes bytes through until `max`, then calls onExceeded once and passes nothing more. */
class ByteLimit extends Transform {
  private seen = 0;
  private exceeded = false;

  constructor(private readonly max: number, private readonly onExceeded: () => void) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.exceeded) return cb();
    this.seen += chunk.length;
    if (this.seen > this.max) {
      this.exceeded = true;
      this.onExceeded();
      return cb();
    }
    cb(null, chunk);
  }
}
