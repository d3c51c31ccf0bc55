import http from 'node:http';

/**
 * Sends a short burst of GETs of the health path to a new process before it
 * takes traffic. A fresh node server runs its first few hundred requests far
 * slower (lazy init, cold JIT); under load those would be real users' requests.
 * Failures are ignored: the health check already decided the process is fit.
 */
export async function warmUp(port: number, path: string, requests = 60, concurrency = 4): Promise<void> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  let left = requests;
  const worker = async () => {
    while (left-- > 0) {
      await new Promise<void>((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path, agent, headers: { 'user-agent': 'platformx-warmup' } }, (res) => {
          res.resume();
          res.on('end', resolve);
          res.on('error', () => resolve());
        });
        req.setTimeout(2000, () => req.destroy());
        req.on('error', () => resolve());
      });
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    agent.destroy();
  }
}
