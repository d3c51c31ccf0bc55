// Issue "one big machine": what a platform restart costs the apps, a cold start
// of many apps, and whether config:set and push slow down with release history.
//
//   npx tsc -p . && node bench/restart-bench.mjs [--apps 20,100] [--records 1000]
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { AppTree, BenchServer, median, plainApp, sleep } from './bench-platform.mjs';

/** Requests to several apps, back to back, over keep-alive and new connections; records failures and gaps. */
function traffic(port, hosts) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
  let running = true;
  let ok = 0;
  const failures = [];
  let last = performance.now();
  let maxGapMs = 0;
  const once = (host, a) => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host }, agent: a }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? null : `status ${res.statusCode}`));
      res.on('error', (e) => resolve(e.message));
    });
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve(e.code ?? e.message));
  });
  const loops = Array.from({ length: 4 }, async (_, i) => {
    let n = i;
    while (running) {
      const host = hosts[n++ % hosts.length];
      const err = await once(host, i % 2 === 0 ? agent : false);
      const now = performance.now();
      if (err) failures.push(err);
      else {
        ok++;
        maxGapMs = Math.max(maxGapMs, now - last);
        last = now;
      }
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
      return { ok, failed: failures.length, failures: failures.slice(0, 5), maxGapMs: Math.round(maxGapMs) };
    },
  };
}

async function waitAllAnswer(port, hosts, timeoutMs = 600_000) {
  const deadline = Date.now() + timeoutMs;
  const pending = new Set(hosts);
  while (pending.size) {
    for (const h of [...pending]) {
      const status = await new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', headers: { host: h }, agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode);
        });
        req.on('error', () => resolve(0));
      });
      if (status === 200) pending.delete(h);
    }
    if (Date.now() > deadline) throw new Error(`${pending.size} apps never answered`);
    if (pending.size) await sleep(100);
  }
}

async function withApps(n, tree, log) {
  const server = await BenchServer.start({ keepApps: true });
  const names = Array.from({ length: n }, (_, i) => `app${String(i + 1).padStart(3, '0')}`);
  const started = performance.now();
  for (const name of names) await tree.push(await server.createApp(name));
  log(`${n} apps deployed in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return { server, hosts: names.map((a) => `${a}.localhost`) };
}

export async function runRestartBench({ apps = [20, 100], records = 1000, log = () => {} } = {}) {
  const tree = await AppTree.create(plainApp('restart bench'));
  const result = { restart: {}, coldStart: null, history: null };
  try {
    for (const n of apps) {
      let { server, hosts } = await withApps(n, tree, log);
      const port = server.info.httpPort;
      const load = traffic(port, hosts.slice(0, 5));
      await sleep(1000);
      const t0 = performance.now();
      await server.stop({ keepData: true });
      const stopped = performance.now();
      server = await BenchServer.start({ data: server.data, keepApps: true });
      const ready = performance.now();
      await sleep(1000);
      const seen = await load.stop();
      const r = { ...seen, stopMs: Math.round(stopped - t0), startMs: Math.round(ready - stopped) };
      result.restart[n] = r;
      log(`${n} apps, SIGTERM + start: ${r.failed} failed of ${r.ok + r.failed}, longest gap ${r.maxGapMs} ms (stop ${r.stopMs} ms, start ${r.startMs} ms)`);
      if (n === Math.max(...apps)) {
        // Cold start: everything stopped (--stop-apps), then one start brings n apps up.
        await server.stop({ keepData: true });
        const stopper = await BenchServer.start({ data: server.data, keepApps: false });
        await stopper.stop({ keepData: true });
        const t1 = performance.now();
        server = await BenchServer.start({ data: server.data, keepApps: false });
        const up = performance.now();
        await waitAllAnswer(server.info.httpPort, hosts);
        result.coldStart = { apps: n, readyMs: Math.round(up - t1), allAnswerMs: Math.round(performance.now() - t1) };
        log(`cold start of ${n} apps: server ready after ${result.coldStart.readyMs} ms, all answer after ${result.coldStart.allAnswerMs} ms`);
      } else {
        // A server started with --stop-apps adopts the apps, then takes them down with it.
        await server.stop({ keepData: true });
        server = await BenchServer.start({ data: server.data, keepApps: false });
      }
      await server.stop();
    }
    result.history = await historyCost(tree, records, log);
  } finally {
    tree.remove();
  }
  const worst = Object.values(result.restart);
  result.targetsMet = {
    noFailedRequests: worst.every((r) => r.failed === 0),
    gapUnder50ms: worst.every((r) => r.maxGapMs < 50),
  };
  return result;
}

/** config:set and push latency with 1 and with `records` release records (the app's history). */
async function historyCost(tree, records, log) {
  const out = {};
  for (const count of [1, records]) {
    let server = await BenchServer.start({ extra: ['--keep-releases', String(records)] });
    let url = await server.createApp('hist');
    await tree.push(url);
    if (count > 1) {
      await server.stop({ keepData: true });
      const file = path.join(server.data, 'apps', 'hist', 'releases.json');
      const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
      const first = doc.records[0];
      doc.records = Array.from({ length: count }, (_, i) => ({ ...first, version: i + 1, description: `seeded ${i + 1}`, status: 'succeeded' }));
      doc.nextVersion = count + 1;
      fs.writeFileSync(file, JSON.stringify(doc));
      const s = JSON.parse(fs.readFileSync(path.join(server.data, 'state.json'), 'utf8'));
      s.apps.hist.current = count;
      fs.writeFileSync(path.join(server.data, 'state.json'), JSON.stringify(s));
      server = await BenchServer.start({ data: server.data, extra: ['--keep-releases', String(records)] });
      url = url.replace(/:\d+\//, `:${server.info.gitHttpPort}/`);
    }
    const configMs = [];
    for (let i = 0; i < 5; i++) {
      const t = performance.now();
      await server.cli(['config:set', 'hist', `N=${i}`]);
      configMs.push(performance.now() - t);
    }
    const pushMs = [];
    for (let i = 0; i < 3; i++) {
      await tree.commit({ 'note.txt': `${count} ${i} ${Date.now()}` }, `push ${i}`);
      const t = performance.now();
      await tree.push(url);
      pushMs.push(performance.now() - t);
    }
    out[count] = { configSetMedianMs: Math.round(median(configMs)), pushMedianMs: Math.round(median(pushMs)) };
    log(`${count} release record(s): config:set ${out[count].configSetMedianMs} ms, push ${out[count].pushMedianMs} ms (medians)`);
    await server.stop();
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (n, d) => (process.argv.indexOf(n) > 0 ? process.argv[process.argv.indexOf(n) + 1] : d);
  const result = await runRestartBench({
    apps: arg('--apps', '20,100').split(',').map(Number), records: Number(arg('--records', '1000')), log: (l) => console.log(l),
  });
  console.log(JSON.stringify(result, null, 2));
}
