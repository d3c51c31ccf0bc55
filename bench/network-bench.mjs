// Network policy cost (issue 14): what the nftables policy adds per request
// through the proxy, per app, and at start-up.
//
//   npx tsc -p . && node bench/network-bench.mjs [--rounds 3] [--seconds 5] [--apps 5]
//
// - per request: wrk (50 connections) through the proxy to a sandboxed app, in
//   alternating rounds with the server's table in force and removed (then
//   restored from its own listing); medians of per-round ratios, so drift cancels.
// - per app: processes the policy keeps (none) and the `uid . port` elements,
//   one per web process; the nft call that adds (or removes) one, as the
//   server makes it at each process start (or exit).
// - start-up: loading the table and the self-check that it refuses.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AppTree, BenchServer, ROOT, cpuMs, descendants, hasCommand, median, plainApp, processTable, run, sleep, startWrk } from './bench-platform.mjs';

const HOST = 'net1.localhost';

async function listTable(table) {
  const r = await run('nft', ['list', 'table', ...table.split(' ')]);
  if (r.code !== 0) throw new Error(`nft list table ${table}: ${r.stderr}`);
  return r.stdout;
}

// Run inside the app cgroup: timed loopback traffic as an app makes it. `pingpong`: 1-byte round
// trips on one connection (the app answering the proxy); `connect`: new connections to a port the
// policy allows (the app calling the proxy), the longest path through the rules.
const MICRO = `const net = require('net');
const [mode, port, n] = process.argv.slice(1).map((x, i) => (i ? Number(x) : x));
const t0 = process.hrtime.bigint();
const us = () => Number(process.hrtime.bigint() - t0) / 1000 / n;
if (mode === 'pingpong') {
  const s = net.connect(port, '127.0.0.1', () => s.write('x'));
  s.setNoDelay(true);
  let left = n;
  s.on('data', () => { if (--left > 0) s.write('x'); else { console.log(us()); s.destroy(); } });
} else {
  let left = n;
  const next = () => { const s = net.connect(port, '127.0.0.1', () => { s.destroy(); if (--left > 0) next(); else console.log(us()); }); };
  next();
}`;

async function micro(procs, mode, port, n) {
  const r = await run('/bin/sh', ['-c', 'echo $$ > "$1" && exec "$2" -e "$3" "$4" "$5" "$6"', 'micro', procs, process.execPath, MICRO, mode, String(port), String(n)]);
  const v = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isFinite(v)) throw new Error(`micro ${mode}: ${r.stderr}${r.stdout}`);
  return v;
}

/**
 * Measures with the server's rules in force and without them, `rounds` times, the order flipping
 * each round so that drift on a shared machine falls on both sides. "Without" removes the table's
 * base chain (its hook goes too) and puts it back: the table itself stays, so the data plane
 * still finds (and at stop removes) the very table it made.
 */
async function withAndWithout(table, listing, rounds, measure) {
  const on = [];
  const off = [];
  let removed = false;
  const pick = /socket cgroupv2 level \d+ "[^"]+" jump app/.exec(listing)?.[0];
  if (!pick) throw new Error(`no app rule in the table:\n${listing}`);
  const nft = async (script, what) => {
    const r = await run('nft', ['-f', '-'], { input: script });
    if (r.code !== 0) throw new Error(`${what}: ${r.stderr}`);
  };
  const remove = async () => {
    await nft(`delete chain ${table} output\n`, 'removing the rules');
    removed = true;
  };
  const restore = async () => {
    await nft(`add chain ${table} output { type filter hook output priority filter; policy accept; }\nadd rule ${table} output ${pick}\n`, 'restoring the rules');
    removed = false;
  };
  try {
    for (let i = 0; i < rounds; i++) {
      if (i % 2 === 0) on.push(await measure());
      await remove();
      off.push(await measure());
      await restore();
      if (i % 2 === 1) on.push(await measure());
    }
  } finally {
    // The rules come back whatever happened above.
    if (removed) await restore();
  }
  return { on, off };
}

async function wrkRound(pid, port, seconds) {
  const before = cpuMs(pid);
  const r = await startWrk(port, HOST, { seconds }).done;
  const after = cpuMs(pid);
  return { ...r, proxyCpuUsPerReq: ((after.self - before.self) * 1000) / r.total };
}

export async function runNetworkBench({ rounds = 3, seconds = 5, apps = 5, log = () => {} } = {}) {
  if (process.getuid?.() !== 0) return { skipped: 'not root: apps share the network, there is no policy to measure' };
  if (!hasCommand('nft') || !hasCommand('wrk')) return { skipped: 'nft or wrk is not installed' };
  const server = await BenchServer.start();
  let tree;
  try {
    const { network } = JSON.parse((await server.cli(['server:info', '--json'])).stdout);
    if (network.mode !== 'isolated') return { skipped: `network: ${network.mode} (${network.reason})` };
    tree = await AppTree.create(plainApp('net'));
    const names = Array.from({ length: apps }, (_, i) => `net${i + 1}`);
    for (const name of names) await tree.push(await server.createApp(name));
    await sleep(2000);

    // Per app: what the policy keeps running and holds.
    const table = processTable();
    const dataplane = server.dataplanePid;
    const nftProcesses = [server.pid, dataplane].flatMap((pid) => descendants(table, pid)).filter((pid) => table.get(pid)?.comm === 'nft').length;
    const listing = await listTable(network.table);
    const elements = (/set own_ports \{[^}]*elements = \{([^}]*)\}/.exec(listing)?.[1] ?? '').split(',').filter((e) => e.trim()).length;
    log(`${apps} apps: ${elements} own-port elements, ${nftProcesses} nft processes kept`);

    // Per process start/exit: one nft call adding (or removing) its element.
    const { ownPortCommand } = await import(pathToFileURL(path.join(ROOT, 'dist/apprunner/network-policy-rules.js')).href);
    const tableName = network.table.split(' ')[1];
    const updateMs = [];
    for (let i = 0; i < 20; i++) {
      for (const op of ['add', 'delete']) {
        const t0 = performance.now();
        const r = spawnSync('nft', ['-f', '-'], { input: ownPortCommand(tableName, op, 65000, 1 + i) + '\n' });
        if (r.status !== 0) throw new Error(`nft ${op}: ${r.stderr}`);
        updateMs.push(performance.now() - t0);
      }
    }
    log(`nft update per process start or exit: median ${median(updateMs).toFixed(1)} ms`);

    // Per request: the same server and app with the table in force and removed.
    const { on, off } = await withAndWithout(network.table, listing, rounds, () => wrkRound(dataplane, server.info.httpPort, seconds));
    on.forEach((x, i) => log(`round ${i + 1}: with policy ${x.rps.toFixed(0)} req/s p99 ${x.p99.toFixed(2)} ms; without ${off[i].rps.toFixed(0)} req/s p99 ${off[i].p99.toFixed(2)} ms`));
    const ratio = (k) => median(on.map((x, i) => x[k] / off[i][k]));

    // Per packet, closer up: an app's own sockets timed with the table in force and removed.
    const procs = path.join('/sys/fs/cgroup', /cgroupv2 level \d+ "([^"]+)"/.exec(listing)[1], 'cgroup.procs');
    const echo = net.createServer((sock) => sock.on('data', (d) => sock.write(d)));
    await new Promise((resolve) => echo.listen(0, '127.0.0.1', resolve));
    let micros;
    try {
      // The client runs as root in the app cgroup: let it reach the echo port as an app reaches its own.
      await run('nft', ['-f', '-'], { input: ownPortCommand(tableName, 'add', 0, echo.address().port) + '\n' });
      micros = await withAndWithout(network.table, listing, 7, async () => ({
        pingpong: await micro(procs, 'pingpong', echo.address().port, 5000),
        connect: await micro(procs, 'connect', server.info.httpPort, 500),
      }));
    } finally {
      echo.close();
    }
    const m = (xs, k) => median(xs.map((x) => x[k]));
    const { on: microOn, off: microOff } = micros;
    log(`an app's round trip on loopback: ${m(microOn, 'pingpong').toFixed(1)} µs with policy, ${m(microOff, 'pingpong').toFixed(1)} µs without; a new allowed connection: ${m(microOn, 'connect').toFixed(1)} / ${m(microOff, 'connect').toFixed(1)} µs`);

    // Start-up: the table and its self-check, on a scratch scope.
    const { installNetworkPolicy } = await import(pathToFileURL(path.join(ROOT, 'dist/apprunner/network-policy.js')).href);
    const installMs = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const policy = await installNetworkPolicy({ scope: 'bench0net', publicPorts: [1], denyEgress: [], log });
      installMs.push(performance.now() - t0);
      if (policy.summary.mode !== 'isolated') throw new Error(`scratch policy: ${policy.summary.reason}`);
      await policy.close();
    }
    log(`start-up: table and self-check ${median(installMs).toFixed(0)} ms`);

    return {
      config: { rounds, seconds, apps, connections: 50 },
      perApp: { residentProcesses: nftProcesses, ownPortElements: elements, updateMedianMs: median(updateMs) },
      perRequest: {
        withPolicy: { rps: m(on, 'rps'), p99Ms: m(on, 'p99'), proxyCpuUsPerReq: m(on, 'proxyCpuUsPerReq') },
        withoutPolicy: { rps: m(off, 'rps'), p99Ms: m(off, 'p99'), proxyCpuUsPerReq: m(off, 'proxyCpuUsPerReq') },
        ratios: { rps: ratio('rps'), p99: ratio('p99'), proxyCpu: ratio('proxyCpuUsPerReq') },
      },
      perPacket: {
        roundTripUs: { withPolicy: m(microOn, 'pingpong'), withoutPolicy: m(microOff, 'pingpong') },
        newConnectionUs: { withPolicy: m(microOn, 'connect'), withoutPolicy: m(microOff, 'connect') },
      },
      startupMedianMs: median(installMs),
    };
  } finally {
    await server.stop();
    tree?.remove();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const arg = (name, fallback) => Number(process.argv[process.argv.indexOf(name) + 1] ?? fallback) || fallback;
  const result = await runNetworkBench({ rounds: arg('--rounds', 3), seconds: arg('--seconds', 5), apps: arg('--apps', 5), log: (l) => console.error(`  ${l}`) });
  console.log(JSON.stringify(result, null, 2));
}
