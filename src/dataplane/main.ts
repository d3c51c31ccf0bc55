// The data plane process: `node dist/dataplane/main.js --data DIR --socket PATH
// --host ADDR --http-port N [--https-port N|off] [--deny-egress CIDR]… [--proxy-workers N]
// [--balance cluster|shared|reuseport]`. Started (detached) by the first server of a data
// folder; later servers find it through its socket. --balance is for measuring (the
// server never passes it).
import { parseArgs } from 'node:util';
import { startDataplane } from './dataplane.js';
import { BALANCES, type Balance } from './proxy-workers.js';
import { defaultBalance, reusePortWorks } from './serving-proxy.js';

const { values } = parseArgs({
  options: {
    data: { type: 'string' },
    socket: { type: 'string' },
    host: { type: 'string' },
    'http-port': { type: 'string' },
    'https-port': { type: 'string' },
    'deny-egress': { type: 'string', multiple: true },
    'proxy-workers': { type: 'string', default: '1' },
    balance: { type: 'string' },
  },
  strict: true,
});
if (!values.data || !values.socket || !values.host || values['http-port'] === undefined) {
  process.stderr.write('usage: dataplane --data DIR --socket PATH --host ADDR --http-port N [--deny-egress CIDR]...\n');
  process.exit(2);
}
const proxyWorkers = Number(values['proxy-workers']);
const balance = (values.balance ?? defaultBalance()) as Balance;
if (!Number.isInteger(proxyWorkers) || proxyWorkers < 1 || !BALANCES.includes(balance) || (balance === 'reuseport' && !reusePortWorks())) {
  process.stderr.write(`dataplane: --proxy-workers must be 1 or more and --balance cluster, shared or reuseport (reuseport needs Node >= 22.12 on Linux, this is ${process.version})\n`);
  process.exit(2);
}
const log = (line: string) => process.stdout.write(`${new Date().toISOString()} dataplane: ${line}\n`);
// Its own session and no terminal: a hung-up terminal or a stopped server must not stop it.
process.on('SIGHUP', () => {});
try {
  const dp = await startDataplane({
    dataDir: values.data, socketPath: values.socket, log,
    listeners: {
      host: values.host, httpPort: Number(values['http-port']),
      httpsPort: values['https-port'] === undefined || values['https-port'] === 'off' ? null : Number(values['https-port']),
      denyEgress: values['deny-egress'] ?? [] },
    proxyWorkers, balance,
  });
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => void dp.shutdown());
  // The launcher waits for this line.
  process.stdout.write(`ready ${dp.httpPort}\n`);
  await dp.done;
  process.exit(0);
} catch (err) {
  log(`could not start: ${(err as Error).message}`);
  process.exit(1);
}
