import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AppLog } from '../src/logs/app-log.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxlog-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('rotates at 10 MB and keeps three files; tail reads across them, oldest first', () => {
  const log = new AppLog(dir);
  const filler = 'x'.repeat(1000);
  for (let i = 0; i < 35_000; i++) log.write('app[web.1]', `${i} ${filler}`);
  log.write('platform[deploy]', 'last line');
  log.close();
  const files = fs.readdirSync(dir).sort();
  expect(files).toEqual(['app.log', 'app.log.1', 'app.log.2']);
  for (const f of files) expect(fs.statSync(path.join(dir, f)).size).toBeLessThanOrEqual(10 * 1024 * 1024);
  // The oldest lines were rotated away; the newest are all there.
  const all = files.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('');
  expect(all).not.toMatch(/app\[web\.1\]: 0 x/);
  const tail = new AppLog(dir).tail(3);
  expect(tail[0]).toMatch(/app\[web\.1\]: 34998 x/);
  expect(tail[2]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z platform\[deploy\]: last line$/);
});
