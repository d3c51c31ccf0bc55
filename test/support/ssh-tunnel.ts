// The real OpenSSH client with one deploy key (no agent, no user config, no
// known hosts), and `ssh -N -L` tunnels through it, as the old SDK's users run them.
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { waitFor } from './apps.js';

export function sshClientArgs(keyFile: string, sshPort: number): string[] {
  return ['-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null',
    '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR', '-i', keyFile, '-p', String(sshPort)];
}

/** The test's environment with HOME moved away and no agent, so only the given key is offered. */
export function sshClientEnv(home: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: home };
  delete env.SSH_AUTH_SOCK;
  return env;
}

export async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** ssh -N -L LOCAL:127.0.0.1:TARGET; resolves with LOCAL once it accepts connections. The ssh process joins `started`. */
export async function sshTunnel(args: string[], env: NodeJS.ProcessEnv, target: number, started: ChildProcess[]): Promise<number> {
  const local = await freePort();
  const child = spawn('ssh', [...args, '-N', '-o', 'ExitOnForwardFailure=yes', '-L', `${local}:127.0.0.1:${target}`, 'git@127.0.0.1'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] });
  started.push(child);
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  await waitFor(() => new Promise<boolean>((resolve, reject) => {
    if (child.exitCode !== null) return reject(new Error(`ssh -L exited: ${stderr}`));
    const s = net.connect(local, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  }), 15_000, 'the ssh tunnel');
  return local;
}
