// Redeploy under load (issue 7, part 3): wrk at 50 connections through the
// proxy while an app is redeployed 20 times in a row by git pushes that change
// its body. Counts non-2xx answers and socket errors, and compares p99 during
// the deploys with p99 at rest (same app, same load, no deploy).
//
//   npx tsc -p . && node bench/redeploy-bench.mjs [--redeploys 20] [--rest-seconds 10] [--proxy-workers N]
import { AppTree, BenchServer, cpuMs, hasCommand, machineBusyMs, plainApp, sleep, startWrk, watchForBody } from './bench-platform.mjs';

export async function runRedeployUnderLoad({ redeploys = 20, restSeconds = 10, connections = 50, proxyWorkers: asked = null, log = () => {} } = {}) {
  if (!hasCommand('wrk')) return { skipped: 'wrk is not installed (apt-get install wrk)' };
  const server = await BenchServer.start({ extra: asked ? ['--proxy-workers', String(asked)] : [] });
  const host = 'loaded.localhost';
  let tree;
  try {
    const url = await server.createApp('loaded');
    // The proxy's processes (--proxy-workers defaults to the cores; 1 runs it in the data plane).
    const proxyWorkers = JSON.parse((await server.cli(['server:info', '--json'])).stdout).proxyWorkers.filter((w) => w.slot > 0).length || 1;
    tree = await AppTree.create(plainApp('release 0'));
    await tree.push(url);

    // Cores in use meanwhile: the whole machine, and the server process (proxy and Maestro) alone.
    const usage = () => ({ at: performance.now(), busy: machineBusyMs(), server: cpuMs(server.pid).self });
    const cores = (a, b) => ({ machine: (b.busy - a.busy) / (b.at - a.at), server: (b.server - a.server) / (b.at - a.at) });
    const r0 = usage();
    const rest = await startWrk(server.info.httpPort, host, { connections, seconds: restSeconds }).done;
    rest.coresUsed = cores(r0, usage());
    log(`at rest: ${Math.round(rest.rps)} req/s, p99 ${rest.p99.toFixed(2)} ms, ${rest.non2xx} non-2xx, ${rest.socketErrors} socket errors`);

    const d0 = usage();
    const load = startWrk(server.info.httpPort, host, { connections, seconds: 900 });
    const pushMs = [];
    let deployed;
    let during;
    try {
      await sleep(1000);
      for (let i = 1; i <= redeploys; i++) {
        const body = `release ${i}`;
        await tree.commit(plainApp(body), body);
        const push = await tree.push(url);
        if (!/Released v/.test(push.stderr)) throw new Error(`redeploy ${i} did not release:\n${push.stderr}`);
        pushMs.push(push.ms);
        log(`redeploy ${i}/${redeploys} under load: push took ${Math.round(push.ms)} ms`);
      }
      const watch = watchForBody(server.info.httpPort, host, `release ${redeploys}`, 30_000);
      deployed = (await watch.served) !== null;
      // The last retired release drains and stops after the switch: keep the load on through it.
      await sleep(1500);
    } finally {
      during = await load.finish();
    }
    during.coresUsed = cores(d0, usage());
    if (!deployed) throw new Error('the last redeploy was never served');
    log(`during redeploys: ${Math.round(during.rps)} req/s, p99 ${during.p99.toFixed(2)} ms, ${during.non2xx} non-2xx, ${during.socketErrors} socket errors`);
    const failed = during.non2xx + during.socketErrors;
    const p99Ratio = during.p99 / rest.p99;
    return {
      config: { redeploys, connections, restSeconds, loadGenerator: 'wrk -t2', proxyWorkers },
      rest,
      during,
      failedRequests: failed,
      p99Ratio,
      pushMsMedian: pushMs.slice().sort((a, b) => a - b)[pushMs.length >> 1],
      // 3x with the proxy on the server's loop (issue 7); 1.5x with proxy workers apart from it (issue 17).
      targetsMet: { noFailedRequests: failed === 0, p99: p99Ratio <= (proxyWorkers > 1 ? 1.5 : 3) },
    };
  } finally {
    tree?.remove();
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, d) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : d);
  const result = await runRedeployUnderLoad({
    redeploys: arg('--redeploys', 20), restSeconds: arg('--rest-seconds', 10), proxyWorkers: arg('--proxy-workers', null), log: (l) => console.log(l),
  });
  console.log(JSON.stringify(result, null, 2));
}
