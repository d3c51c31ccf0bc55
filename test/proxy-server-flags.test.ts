// The server's proxy flags reach the proxy in the data plane, and a data plane
// kept serving across a server restart takes the next server's flags.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AppRepo, get, nodeApp, serverSource } from './support/apps.js';
import { Platform } from './support/platform.js';

/** The server running on the shared data folder: destroying it stops the data plane and removes the folder. */
let current: Platform | null = null;
let repo: AppRepo | null = null;
afterAll(async () => {
  await current?.destroy();
  repo?.remove();
});

it('--request-timeout bounds how long an app may take to answer, and a restarted server changes it', async () => {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'pxf-'));
  // The app's /slow answers after 300 ms; deadlines are swept every 100 ms, so a 0.1 s
  // timeout fires well before it (a 0.2 s one could fire as late as 300 ms).
  const first = new Platform(data, ['--request-timeout', '0.1']);
  first.keepApps = true;
  current = first;
  await first.boot();
  const token = await first.createApp('timer');
  repo = await AppRepo.create(nodeApp('on time', { 'server.js': serverSource('on time') }));
  const push = await repo.push(first.gitUrl('timer', token));
  expect(push.code, push.stderr).toBe(0);
  expect((await get(first.info.httpPort, 'timer.localhost')).body).toBe('on time');
  const slow = await get(first.info.httpPort, 'timer.localhost', '/slow');
  expect(slow.status).toBe(504);
  expect(slow.body).toBe("App 'timer' sent no response within 0.1 s (the server's --request-timeout).\n");

  // The data plane serves on through the restart; the new server's flag applies to it.
  await first.stop();
  const second = new Platform(data, ['--request-timeout', '5']);
  current = second;
  await second.boot();
  expect(second.output).toMatch(/data plane pid \d+ kept serving/);
  const later = await get(second.info.httpPort, 'timer.localhost', '/slow');
  expect([later.status, later.body]).toEqual([200, 'on time']);
});
