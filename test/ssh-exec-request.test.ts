// How SSH exec strings are read: no shell, only git services, platformx
// commands and rsync's server mode; everything else refused with a reason.
import { describe, expect, test } from 'vitest';
import { appFromRepoPath, parseExecRequest } from '../src/ssh/exec-request.js';

describe('git services', () => {
  test.each([
    ["git-receive-pack 'hello.git'", 'git-receive-pack'],
    ["git-receive-pack '/hello.git'", 'git-receive-pack'],
    ['git-receive-pack hello', 'git-receive-pack'],
    ['git-receive-pack "/hello.git"', 'git-receive-pack'],
    ["git receive-pack 'hello.git'", 'git-receive-pack'],
    ["git-upload-pack '/hello.git/'", 'git-upload-pack'],
    ["git upload-pack '/hello'", 'git-upload-pack'],
  ])('%s', (command, service) => {
    expect(parseExecRequest(command)).toEqual({ kind: 'git', service, app: 'hello' });
  });

  test.each([
    "git-receive-pack '../other.git'",
    "git-receive-pack '/../other.git'",
    "git-upload-pack 'a/b.git'",
    "git-upload-pack '~/hello.git'",
    "git-upload-pack 'Hello.git'",
    "git-upload-pack '//hello.git'",
    "git-upload-pack '/srv/apps/hello.git'",
    "git-upload-pack 'hello;id.git'",
    "git-upload-pack '.git'",
  ])('refuses the path in %s', (command) => {
    const r = parseExecRequest(command);
    expect(r.kind).toBe('refused');
    expect(r.kind === 'refused' && r.reason).toMatch(/^invalid repository path '.*': use APP\.git/);
  });

  test('one path only, and no git archive', () => {
    expect(parseExecRequest("git-upload-pack 'a.git' 'b.git'")).toMatchObject({ kind: 'refused', reason: expect.stringContaining('exactly one repository path') });
    expect(parseExecRequest('git-upload-pack')).toMatchObject({ kind: 'refused' });
    expect(parseExecRequest("git-upload-archive 'hello.git'")).toMatchObject({ kind: 'refused', reason: expect.stringContaining('not offered') });
  });

  test('appFromRepoPath', () => {
    expect(appFromRepoPath('/my-app.git')).toBe('my-app');
    expect(appFromRepoPath('my-app')).toBe('my-app');
    expect(appFromRepoPath('..')).toBeNull();
    expect(appFromRepoPath('')).toBeNull();
    expect(appFromRepoPath('-x.git')).toBeNull();
  });
});

describe('platformx commands', () => {
  test('split on whitespace with quotes, optional platformx prefix', () => {
    expect(parseExecRequest('ps hello')).toEqual({ kind: 'command', argv: ['ps', 'hello'] });
    expect(parseExecRequest('platformx apps:info hello --json')).toEqual({ kind: 'command', argv: ['apps:info', 'hello', '--json'] });
    expect(parseExecRequest("  logs\thello  -n 5 -f ")).toEqual({ kind: 'command', argv: ['logs', 'hello', '-n', '5', '-f'] });
    expect(parseExecRequest(`config:set hello 'MSG=a b; c' "X=y \\"z\\""`)).toEqual({ kind: 'command', argv: ['config:set', 'hello', 'MSG=a b; c', 'X=y "z"'] });
    expect(parseExecRequest("domains:add hello www.example.com")).toEqual({ kind: 'command', argv: ['domains:add', 'hello', 'www.example.com'] });
    expect(parseExecRequest("echo ''")).toEqual({ kind: 'command', argv: ['echo', ''] });
    expect(parseExecRequest('platformx')).toEqual({ kind: 'command', argv: ['help'] });
    expect(parseExecRequest('help')).toEqual({ kind: 'command', argv: ['help'] });
  });

  test.each([
    ['ps hello; touch /tmp/pwned', ';'],
    ['$(touch x)', '$'],
    ['ps `id`', '`'],
    ['ps hello && id', '&'],
    ['ps hello | sh', '|'],
    ['ps hello > /tmp/x', '>'],
    ['ps < /etc/passwd', '<'],
    ['ps hello*', '*'],
    ['ps ~root', '~'],
    ['ps \\x', '\\'],
    ['echo "$HOME"', '$'],
    ['echo "`id`"', '`'],
    ['ps (hello)', '('],
    ['ps {a,b}', '{'],
    ['ps #x', '#'],
  ])('refuses shell syntax in %s', (command, char) => {
    expect(parseExecRequest(command)).toEqual({ kind: 'refused', reason: expect.stringContaining(`shell syntax '${char}' is not allowed`) });
  });

  test.each([
    ['ls /', 'command'],
    ['/bin/sh -c id', 'refused'],
    ['sh', 'command'],
    ['./ps', 'refused'],
    ['PS hello', 'refused'],
    ['', 'refused'],
    ['   ', 'refused'],
    ["ps 'hello", 'refused'],
    ['ps "hello', 'refused'],
    ['ps hello\nid', 'refused'],
    ['ps hello\0', 'refused'],
    ['platformx /bin/sh', 'refused'],
  ])('%j is a %s', (command, kind) => {
    // Words like "ls" go to the dispatcher, which answers "unknown command"; paths and syntax never get that far.
    expect(parseExecRequest(command).kind).toBe(kind);
  });

  test('a very long exec string is refused', () => {
    expect(parseExecRequest('ps ' + 'a'.repeat(10_000))).toMatchObject({ kind: 'refused', reason: expect.stringContaining('too long') });
  });
});

describe('rsync (legacy hook)', () => {
  test('server mode is passed on as words, with rsync backslash escapes', () => {
    expect(parseExecRequest('rsync --server -vlogDtpre.iLsfxCIvu . /hello/')).toEqual({
      kind: 'rsync', argv: ['rsync', '--server', '-vlogDtpre.iLsfxCIvu', '.', '/hello/'],
    });
    expect(parseExecRequest('rsync --server -e.LsfxC . my\\ dir/')).toEqual({ kind: 'rsync', argv: ['rsync', '--server', '-e.LsfxC', '.', 'my dir/'] });
  });

  test('anything but server mode, and shell syntax, is refused', () => {
    expect(parseExecRequest('rsync -av / /tmp')).toMatchObject({ kind: 'refused' });
    expect(parseExecRequest('rsync --server . /x; id')).toMatchObject({ kind: 'refused', reason: expect.stringContaining("';'") });
  });
});
