// Footprint (issue 7, part 4): the server's RSS idle with no app and with 20
// running apps, and how many processes each app keeps resident beyond the app
// itself (a wrapper shell, npm, a supervisor…), from /proc.
//
//   npx tsc -p . && node bench/footprint-bench.mjs [--apps 20]
import { AppTree, BenchServer, descendants, plainApp, processTable, pssMb, rss, sleep } from './bench-platform.mjs';

const SETTLE_MS = 3000;

/** Both ways the server runs apps: sandboxed (as root with bubblewrap) and unconfined. */
export async function runFootprint({ apps = 20, log = () => {} } = {}) {
  const result = await measure({ apps, log, unconfined: false });
  if (result.isolation === 'sandbox') {
    log('again with the server as nobody, so its apps run unconfined:');
    const plain = await measure({ apps, log, unconfined: true });
    result.unconfined = { ...plain, perApp: undefined };
  }
  return result;
}

async function measure({ apps, log, unconfined }) {
  const server = await BenchServer.start({ unconfined });
  let tree;
  try {
    await sleep(SETTLE_MS);
    // The platform's own memory: the server and its data plane (the proxy, the apps' parent).
    const both = () => {
      const a = rss(server.pid);
      const b = rss(server.dataplanePid);
      return { rssMb: a.rssMb + b.rssMb, peakMb: a.peakMb + b.peakMb, serverMb: a.rssMb, dataplaneMb: b.rssMb };
    };
    const idle = both();
    log(`server + data plane idle, 0 apps: RSS ${idle.rssMb.toFixed(1)} MB (${idle.serverMb.toFixed(1)} + ${idle.dataplaneMb.toFixed(1)})`);

    tree = await AppTree.create(plainApp('footprint'));
    const names = Array.from({ length: apps }, (_, i) => `app${String(i + 1).padStart(2, '0')}`);
    for (const name of names) {
      const url = await server.createApp(name);
      await tree.push(url);
    }
    await sleep(SETTLE_MS);
    const loaded = both();
    log(`server + data plane with ${apps} running apps: RSS ${loaded.rssMb.toFixed(1)} MB (${loaded.serverMb.toFixed(1)} + ${loaded.dataplaneMb.toFixed(1)}; peak ${loaded.peakMb.toFixed(1)} MB)`);

    // Each app process runs in its own process group: count the group and the tree under the app's pid.
    const table = processTable();
    const perApp = [];
    const appPids = new Set();
    const inAppTrees = new Set();
    for (const name of names) {
      for (const p of await server.ps(name)) {
        if (p.state !== 'up' || !p.pid) throw new Error(`${name} ${p.process} is ${p.state}`);
        appPids.add(p.pid);
        const group = [...table].filter(([, e]) => e.pgid === p.pid).map(([pid]) => pid);
        const members = new Set([...group, ...descendants(table, p.pid)]);
        for (const m of members) inAppTrees.add(m);
        // What the processes other than the app's node cost, in proportional set size.
        const wrappersPss = [...members].filter((pid) => table.get(pid)?.comm !== 'node').reduce((mb, pid) => mb + pssMb(pid), 0);
        perApp.push({ app: name, process: p.process, pid: p.pid, command: table.get(p.pid)?.comm ?? '?', extra: members.size - 1, wrappersPss });
      }
    }
    // Anything else the platform keeps running (per-app log tailers, supervisors…) shows up as other descendants.
    const serverChildren = [...descendants(table, server.pid), ...descendants(table, server.dataplanePid)].filter((pid) => pid !== server.pid && pid !== server.dataplanePid);
    const others = serverChildren.filter((pid) => !appPids.has(pid) && !inAppTrees.has(pid));
    const extraPerApp = Math.max(...perApp.map((a) => a.extra));
    const wrappers = perApp.filter((a) => a.command !== 'node').length;
    const wrapperPssMb = Math.max(...perApp.map((a) => a.wrappersPss));
    const isolation = JSON.parse((await server.cli(['apps:info', names[0], '--json'])).stdout).isolation;
    log(`isolation ${isolation}: processes per app beyond the app: max ${extraPerApp} (${wrapperPssMb.toFixed(2)} MB PSS); app pids that are not node itself: ${wrappers}; other server children: ${others.length}`);
    return {
      apps,
      isolation,
      serverIdleRssMb: idle.rssMb,
      serverRssMbWithApps: loaded.rssMb,
      serverOnlyRssMbWithApps: loaded.serverMb,
      dataplaneRssMbWithApps: loaded.dataplaneMb,
      serverPeakRssMbWithApps: loaded.peakMb,
      extraProcessesPerApp: extraPerApp,
      wrapperPssMbPerApp: wrapperPssMb,
      appPidsNotNode: wrappers,
      otherServerChildren: others.length,
      perApp,
      targetsMet: { noWrapper: extraPerApp === 0 && wrappers === 0 && others.length === 0, rss: loaded.rssMb <= 120 },
    };
  } finally {
    tree?.remove();
    await server.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--apps');
  const result = await runFootprint({ apps: i > 0 ? Number(process.argv[i + 1]) : 20, log: (l) => console.log(l) });
  console.log(JSON.stringify({ ...result, perApp: undefined }, null, 2));
}
