// Push-to-live benchmark (issue 7, part 2): wall time from `git push` start
// until the proxy serves the new body, for an app without dependencies and an
// Express app with a lockfile on a warm npm cache, with the time of each
// pipeline step read from the deploy output as it streams back to the pusher.
//
//   npx tsc -p . && node bench/deploy-bench.mjs [--reps 7]
import { AppTree, BenchServer, cpuMs, median, plainApp, run, sleep, watchForBody } from './bench-platform.mjs';

export const STEPS = ['receive', 'checkout', 'install', 'build', 'start', 'health', 'switch'];

// Step headers of the deploy output (src/maestro), as the pusher sees them.
const MARKS = {
  prepare: /^-----> Preparing release/,
  install: /^-----> (Installing dependencies|No dependencies)/,
  build: /^-----> (Building|Pruning|Running release command)/,
  start: /^-----> Starting /,
  health: /^-----> Health check/,
  healthy: /^\s+healthy on port/,
  released: /^-----> Released v/,
};

/** Times (ms from push start) of the first line matching each mark. */
function markTimes(lines) {
  const at = {};
  for (const { at: t, text } of lines) {
    const line = text.replace(/^remote: /, '').trimEnd();
    for (const [mark, re] of Object.entries(MARKS)) if (at[mark] === undefined && re.test(line)) at[mark] = t;
  }
  for (const mark of ['prepare', 'install', 'start', 'health', 'healthy', 'released']) {
    if (at[mark] === undefined) throw new Error(`the deploy output has no '${mark}' step:\n${lines.map((l) => l.text).join('\n')}`);
  }
  return at;
}

/**
 * Splits one deploy into the pipeline's steps:
 *   receive  push start → Maestro starts the release (HTTP negotiation, pack upload, pre-receive hook)
 *   checkout → install step (deploy lock, release record, git archive | tar)
 *   install  npm ci / nothing;  build  npm run build, prune, release command
 *   start    spawn → listening on PORT;  health  GET / until it answers
 *   switch   healthy → the proxy serves the new body (post-receive hook, route switch)
 */
function stepTimes(at, servedMs) {
  const afterInstall = at.build ?? at.start;
  return {
    receive: at.prepare,
    checkout: at.install - at.prepare,
    install: afterInstall - at.install,
    build: at.build === undefined ? 0 : at.start - at.build,
    start: at.health - at.start,
    health: at.healthy - at.health,
    switch: servedMs - at.healthy,
  };
}

/** How the push installed dependencies, from its output. */
function installMode(lines) {
  const text = lines.map((l) => l.text).join('\n');
  if (/Installing dependencies \(npm ci\)/.test(text)) return 'npm ci';
  if (/Installing dependencies: reusing/.test(text)) return 'reused';
  if (/No dependencies to install/.test(text)) return 'none';
  return 'other';
}

/** One push of a changed body; returns total and step times in ms. */
async function timedPush(server, tree, url, host, files, body, expectInstall) {
  await tree.commit(files, body);
  const watch = watchForBody(server.info.httpPort, host, body);
  const t0 = performance.now();
  let push;
  try {
    push = await tree.push(url);
  } finally {
    setTimeout(() => watch.stop(), 30_000).unref();
  }
  const servedAt = await watch.served;
  watch.stop();
  if (servedAt === null) throw new Error(`the new body '${body}' was never served`);
  const totalMs = servedAt - t0;
  const at = markTimes(push.lines);
  const install = installMode(push.lines);
  if (expectInstall && install !== expectInstall) throw new Error(`expected the deploy to install with '${expectInstall}', it did '${install}'`);
  return { totalMs, pushMs: push.ms, install, steps: stepTimes(at, totalMs) };
}

/**
 * What one deploy costs the machine, over n pushes without the poller: the
 * server process itself (with its forks); what it started and reaped
 * (receive-pack, hooks, git archive, tar, the retired app); the pushing git
 * client with its `git add` and `git commit`.
 */
async function deployCpu(server, tree, url, n) {
  await sleep(1000);
  const cpu0 = { server: cpuMs(server.pid), bench: cpuMs(process.pid) };
  for (let i = 1; i <= n; i++) {
    await tree.commit(plainApp(`cpu ${i}`), `cpu ${i}`);
    await tree.push(url);
  }
  await sleep(1000); // the last retired process exits and is reaped
  const cpu1 = { server: cpuMs(server.pid), bench: cpuMs(process.pid) };
  return {
    serverMs: (cpu1.server.self - cpu0.server.self) / n,
    serverChildrenMs: (cpu1.server.children - cpu0.server.children) / n,
    gitClientMs: (cpu1.bench.children - cpu0.bench.children) / n,
  };
}

function summarize(runs) {
  const steps = {};
  for (const s of STEPS) steps[s] = median(runs.map((r) => r.steps[s]));
  return {
    medianMs: median(runs.map((r) => r.totalMs)), minMs: Math.min(...runs.map((r) => r.totalMs)), maxMs: Math.max(...runs.map((r) => r.totalMs)),
    // git push returns once the old release gets no new requests: later than the first new answer when the poller's traffic made slow start engage.
    pushMedianMs: median(runs.map((r) => r.pushMs)),
    steps, runs,
  };
}

// `description` is part of package.json, so changing it makes the build run npm ci again.
const expressFiles = (body, description = 'bench') => ({
  'package.json': JSON.stringify({ name: 'expressed', version: '1.0.0', description, main: 'app.js', scripts: { start: 'node app.js' },
    dependencies: { express: '4.21.2' } }, null, 2),
  'app.js': `const express = require('express');
const app = express();
app.get('/', (req, res) => res.send(${JSON.stringify(body)}));
const server = app.listen(process.env.PORT);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
});

/**
 * Part 2. reps: measured deploys of the no-dependency app; expressReps: of
 * the Express app, once with npm ci on the warm cache (package.json changed)
 * and once with only code changed (node_modules reused).
 */
export async function runPushToLive({ reps = 7, expressReps = 5, log = () => {} } = {}) {
  const server = await BenchServer.start();
  const trees = [];
  try {
    // (a) no dependencies: the first deploy creates the app's first release; measure the redeploys after it.
    const plainUrl = await server.createApp('plain');
    const plain = await AppTree.create(plainApp('plain warm-up'));
    trees.push(plain);
    await plain.push(plainUrl);
    const plainRuns = [];
    for (let i = 1; i <= reps; i++) {
      const body = `plain ${i}`;
      const r = await timedPush(server, plain, plainUrl, 'plain.localhost', plainApp(body), body, 'none');
      plainRuns.push(r);
      log(`no-dependency app, deploy ${i}/${reps}: ${fmt(r)}`);
    }
    const cpuPerDeploy = await deployCpu(server, plain, plainUrl, 3);
    log(`CPU per deploy: server ${Math.round(cpuPerDeploy.serverMs)} ms, its children ${Math.round(cpuPerDeploy.serverChildrenMs)} ms, git client ${Math.round(cpuPerDeploy.gitClientMs)} ms`);

    // (b) Express with a lockfile: the warm-up deploy fills the server's npm cache.
    const expressUrl = await server.createApp('expressed');
    const express = await AppTree.create(expressFiles('express warm-up'));
    trees.push(express);
    const lock = await run('npm', ['install', '--package-lock-only', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: express.dir });
    if (lock.code !== 0) throw new Error(`npm could not write the Express app's lockfile: ${lock.stderr.trim().split('\n').pop()}`);
    await express.commit({}, 'lockfile');
    const host = 'expressed.localhost';
    const warm = await timedPush(server, express, expressUrl, host, expressFiles('express warm-up 2'), 'express warm-up 2', 'npm ci');
    log(`Express app, warm-up deploy (cold npm cache): ${fmt(warm)}`);
    const ciRuns = [];
    for (let i = 1; i <= expressReps; i++) {
      const body = `express ci ${i}`;
      const r = await timedPush(server, express, expressUrl, host, expressFiles(body, body), body, 'npm ci');
      ciRuns.push(r);
      log(`Express app, package.json changed (npm ci, warm cache) ${i}/${expressReps}: ${fmt(r)}`);
    }
    const reuseRuns = [];
    for (let i = 1; i <= expressReps; i++) {
      const body = `express code ${i}`;
      const r = await timedPush(server, express, expressUrl, host, expressFiles(body, `express ci ${expressReps}`), body, 'reused');
      reuseRuns.push(r);
      log(`Express app, code changed (node_modules reused) ${i}/${expressReps}: ${fmt(r)}`);
    }
    const noDeps = { ...summarize(plainRuns), cpuPerDeploy };
    const expressCi = { ...summarize(ciRuns), coldCacheMs: warm.totalMs };
    const expressReuse = summarize(reuseRuns);
    return {
      noDependencies: noDeps,
      expressNpmCi: expressCi,
      expressCodeChange: expressReuse,
      // The issue's case (b) is npm ci on a warm cache; the code-only push is what most pushes are.
      targetsMet: { noDependencies: noDeps.medianMs <= 1500, express: expressCi.medianMs <= 4000 },
    };
  } finally {
    for (const t of trees) t.remove();
    await server.stop();
  }
}

function fmt(r) {
  return `${Math.round(r.totalMs)} ms (${STEPS.map((s) => `${s} ${Math.round(r.steps[s])}`).join(', ')})`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const i = process.argv.indexOf('--reps');
  const reps = i > 0 ? Number(process.argv[i + 1]) : 7;
  const result = await runPushToLive({ reps, expressReps: Math.max(3, Math.round(reps * 0.7)), log: (l) => console.log(l) });
  const brief = (x) => ({ ...x, runs: undefined });
  console.log(JSON.stringify({ ...result, noDependencies: brief(result.noDependencies), expressNpmCi: brief(result.expressNpmCi), expressCodeChange: brief(result.expressCodeChange) }, null, 2));
}
