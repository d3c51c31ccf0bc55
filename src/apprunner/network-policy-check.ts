import { spawn } from 'node:child_process';
import net from 'node:net';

// Connects once to the port in argv and prints what happened; a fixed script.
const PROBE = `const s = require('net').connect(+process.argv[1], '127.0.0.1');
s.on('connect', () => { console.log('connected'); process.exit(0); });
s.on('error', (e) => { console.log(e.code); process.exit(0); });`;

/**
 * Proves the rules take effect before any app starts: a process in the app
 * cgroup connects to a loopback port this server holds open and must be
 * refused. Null when it is; otherwise why not (the rules match no socket, e.g.
 * inside a cgroup namespace where the group's level is not the one nft sees).
 */
export async function checkRefusal(procs: string): Promise<string | null> {
  const listener = net.createServer((s) => s.destroy());
  await new Promise<void>((resolve, reject) => listener.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (listener.address() as net.AddressInfo).port;
  try {
    const answer = await new Promise<string>((resolve) => {
      const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1" && exec "$2" -e "$3" "$4"', 'probe', procs, process.execPath, PROBE, String(port)], {
        stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: '/usr/bin:/bin' }, timeout: 10_000,
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (out += d));
      child.on('error', (e) => resolve(e.message));
      child.on('close', () => resolve(out.trim()));
    });
    if (answer === 'ECONNREFUSED') return null;
    if (answer === 'connected') return 'the rules did not apply to a process in the app cgroup (is the server inside a cgroup namespace?)';
    return `the check of the rules failed: ${answer.split('\n')[0] || 'no answer'}`;
  } finally {
    listener.close();
  }
}
