import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { AppLog } from '../src/logs/app-log.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pxlog-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('rotates at 10 MB and keeps three files; tail reads across them, oldest first', async () => {
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
  const tail = await new AppLog(dir).tail(3);
  expect(tail[0]).toMatch(/app\[web\.1\]: 34998 x/);
  expect(tail[2]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z platform\[deploy\]: last line$/);
});

it('tail reads a large log backwards across rotated files: the exact last n lines, filtered, oldest first', async () => {
  const big = fs.mkdtempSync(path.join(dir, 'big-'));
  // Lines of many lengths (some longer than a 64 KB block, some with multi-byte characters) in three files of ~2 MB.
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  let i = 0;
  const fileText = (lines: number) => {
    let text = '';
    for (let k = 0; k < lines; k++, i++) {
      const tag = i % 3 === 0 ? 'platform[deploy]' : 'app[web.1]';
      const body = i % 997 === 0 ? 'y'.repeat(70_000 + i) : `${'é✓'.repeat(Math.floor(random() * 20))}${'z'.repeat(Math.floor(random() * 200))}`;
      text += `2026-01-01T00:00:00.000Z ${tag}: ${i} ${body}\n`;
    }
    return text;
  };
  for (const name of ['app.log.2', 'app.log.1', 'app.log']) fs.writeFileSync(path.join(big, name), fileText(12_000));
  for (const name of ['app.log.2', 'app.log.1', 'app.log']) expect(fs.statSync(path.join(big, name)).size).toBeGreaterThan(2 * 1024 * 1024);

  const log = new AppLog(big);
  log.write('platform[deploy]', 'still pending\nand this too');
  const deploy = (l: string) => l.includes(' platform[deploy]: ');
  const cases: [number, ((l: string) => boolean) | undefined][] = [
    [1, undefined], [3, deploy], [100, undefined], [11_999, undefined], [12_001, undefined], [30_000, deploy], [36_002, undefined], [50_000, undefined], [50_000, deploy], [5, () => false],
  ];
  for (const [n, filter] of cases) {
    const got = await log.tail(n, filter);
    // The plain way: every line of every file, oldest file first.
    const all = ['app.log.2', 'app.log.1', 'app.log']
      .flatMap((f) => fs.readFileSync(path.join(big, f), 'utf8').split('\n'))
      .filter((l) => l.length > 0 && (!filter || filter(l)));
    expect(got.length).toBe(Math.min(n, all.length));
    expect(got).toEqual(all.slice(-n));
  }
  const last = await log.tail(3);
  expect(last[0]).toMatch(/^2026-01-01T00:00:00\.000Z app\[web\.1\]: 35999 /);
  expect(last[1]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z platform\[deploy\]: still pending$/);
  expect(last[2]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z platform\[deploy\]: and this too$/);
  expect(await log.tail(0)).toEqual([]);
  expect(await log.tail(-1)).toEqual([]);
  log.close();
});

it('tail of a log with no file yet is empty', async () => {
  expect(await new AppLog(path.join(dir, 'never-written')).tail(10)).toEqual([]);
});
