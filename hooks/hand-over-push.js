// Shared by the hooks: hands the push to Maestro over the control socket and
// streams its output back to the pusher (git prints it as `remote:` lines).
// The socket's framing comes from the server's build (dist/), as bin/platformx does.
// Its own failures start with '!     ', as every refusal the pusher sees does (src/git/push-deploy.ts).
'use strict';
const net = require('node:net');
const path = require('node:path');

const QUARANTINE_VARS = ['GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_QUARANTINE_PATH'];

function readRefs() {
  return new Promise((resolve) => {
    let input = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d) => (input += d));
    process.stdin.on('end', () => {
      const refs = input
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [oldSha, newSha, ref] = line.split(' ');
          return { old: oldSha, new: newSha, ref };
        });
      resolve(refs);
    });
  });
}

async function handOver(hook) {
  const socket = process.env.PLATFORMX_CONTROL_SOCKET;
  if (!socket) {
    process.stderr.write('!     PLATFORMX_CONTROL_SOCKET is not set; this hook runs only from a platformx repository\n');
    process.exit(1);
  }
  let wire;
  try {
    wire = await import('../dist/wire/json-lines.js');
  } catch (err) {
    process.stderr.write(`!     the server is not built (${err.code || err.message}): run 'npm run build' and push again\n`);
    process.exit(1);
  }
  const { encodeJsonLine, readJsonLines } = wire;
  const refs = await readRefs();
  const gitEnv = {};
  // git sets these as absolute paths; the alternates variable may list several.
  for (const k of QUARANTINE_VARS) if (process.env[k]) gitEnv[k] = process.env[k];
  const request = {
    type: 'hook',
    hook,
    // The hook is exec'd by git-receive-pack: its parent is the process the server spawned for this push.
    ppid: process.ppid,
    gitDir: path.resolve(process.env.GIT_DIR || '.'),
    refs,
    gitEnv,
  };
  let exit = 1;
  const conn = net.connect(socket, () => conn.write(encodeJsonLine(request)));
  conn.on('data', readJsonLines((msg) => {
    if (typeof msg.err === 'string') process.stderr.write(msg.err);
    else if (typeof msg.out === 'string') process.stderr.write(msg.out);
    else if (typeof msg.exit === 'number') exit = msg.exit;
  }));
  conn.on('error', (err) => {
    process.stderr.write(`!     the deploy server is not reachable (${err.code || err.message}); push again once it runs\n`);
    process.exit(1);
  });
  conn.on('close', () => process.exit(exit));
}

module.exports = { handOver };
