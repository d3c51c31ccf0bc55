// The git process that serves one client's fetch or push, over HTTP or SSH: a
// fixed argv (no shell) whose stdio streams to the client, and whose outcome is
// read rather than thrown.
import { execa } from 'execa';

export function spawnGitService(service: 'git-upload-pack' | 'git-receive-pack', args: string[], o: { gitProtocol?: string; timeout: number }) {
  // Only the client's GIT_PROTOCOL (checked by the caller), never one the server itself was started with.
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.GIT_PROTOCOL;
  if (o.gitProtocol) env.GIT_PROTOCOL = o.gitProtocol;
  const child = execa(service, args, {
    env,
    extendEnv: false,
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    // The request and the answer stream through these pipes: nothing is collected, and the outcome is read, not thrown.
    buffer: false,
    encoding: 'buffer',
    reject: false,
    timeout: o.timeout,
    // As with a plain spawn (and sshd): a server that stops does not kill a push in flight.
    cleanup: false,
  });
  // git stops reading when it fails or is done; its exit code tells which.
  child.stdin.on('error', () => {});
  child.stdout.on('error', () => {});
  child.stderr.on('error', () => {});
  return child;
}
