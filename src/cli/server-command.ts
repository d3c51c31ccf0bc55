import { startServer } from '../server/server.js';
import { createServerLog } from '../server/server-log.js';
import { parseServerOptions } from '../server/server-options.js';

/** `platformx server`: starts everything, prints the ready line, stops cleanly on SIGINT/SIGTERM. */
export async function runServerCommand(argv: string[]): Promise<number> {
  const opts = parseServerOptions(argv);
  const log = createServerLog(opts.logFormat);
  const server = await startServer(opts, log);
  const { info } = server;
  const local = info.host === '0.0.0.0' || info.host === '::' ? '127.0.0.1' : info.host;
  log(
    `ready: proxy http://${info.host}:${info.httpPort}` +
      (info.httpsPort !== null ? ` https://${info.host}:${info.httpsPort}` : '') +
      ` git-http http://${info.host}:${info.gitHttpPort}` +
      (info.sshPort !== null ? ` ssh ${info.host}:${info.sshPort}` : '') +
      (info.dnodePort !== null ? ` dnode ${info.dnodePort}` : '') +
      (info.dashboardPort !== null ? ` dashboard http://${info.host}:${info.dashboardPort}` : '') +
      ` isolation ${info.isolation} data ${info.dataDir} pid ${info.pid}`,
    { httpPort: info.httpPort, gitHttpPort: info.gitHttpPort, sshPort: info.sshPort, dnodePort: info.dnodePort, dashboardPort: info.dashboardPort },
  );
  if (info.sshFingerprint) log(`ssh host key ${info.sshFingerprint}`);
  log(`deploy your first app (in another terminal, in an app folder with git):`);
  log(`  npx platformx apps:create hello && npx platformx tokens:create hello`);
  log(`  git push http://x:TOKEN@${local}:${info.gitHttpPort}/hello.git main`);
  log(`  curl -H 'Host: hello.${info.baseDomain}' http://${local}:${info.httpPort}/`);
  if (info.httpsPort !== null) log(`  curl -k --resolve hello.${info.baseDomain}:${info.httpsPort}:${local} https://hello.${info.baseDomain}:${info.httpsPort}/`);
  if (info.dashboardPort !== null) log(`dashboard: run 'npx platformx dashboard:login' for a one-time sign-in URL`);
  await new Promise<void>((resolve) => {
    // Ctrl-C in a terminal means "done": everything stops. SIGTERM (a service manager's
    // restart or an upgrade) leaves the apps serving for the next server, unless --stop-apps.
    const stop = (signal: string, stopApps: boolean) => {
      log(stopApps ? `${signal}: stopping apps, the proxy and listeners` : `${signal}: stopping; the apps and the proxy serve on for the next start (--stop-apps stops them too)`);
      void server.stop(stopApps).then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT', true));
    process.once('SIGTERM', () => stop('SIGTERM', opts.stopApps));
  });
  // Everything that matters is closed and flushed: exit now rather than wait on a
  // stray handle (a stop must be quick, or a service manager's restart waits on it).
  log('stopped');
  process.exit(0);
}
