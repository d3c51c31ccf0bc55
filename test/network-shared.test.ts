// Without the tool the policy needs (nft), or without root, the server still
// starts, warns once, and says the network is shared.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataScope } from '../src/apprunner/data-scope.js';
import { run, Platform } from './support/platform.js';

const isRoot = process.getuid?.() === 0;
let px: Platform;

beforeAll(async () => {
  px = new Platform(fs.mkdtempSync(path.join(os.tmpdir(), 'pxt-')));
  // As root: a PATH without /usr/sbin, where nft lives (bwrap and setpriv are in /usr/bin); the data plane inherits it.
  if (isRoot) px.env = { PATH: '/usr/local/bin:/usr/bin:/bin' };
  await px.boot();
  await px.ok(['apps:create', 'plain']);
});
afterAll(async () => {
  await px?.destroy();
});

describe(`a server whose apps cannot get the network policy (${isRoot ? 'no nft on its PATH' : 'not root'})`, () => {
  it('starts, and warns about it once', () => {
    const warnings = px.output.split('\n').filter((l) => l.includes('WARNING') && l.includes('network: shared'));
    expect(warnings, px.output).toHaveLength(1);
    if (isRoot) expect(warnings[0]).toContain('nft is not installed (apt-get install nftables)');
  });

  it("apps:info says 'network: shared' and server:info says why", async () => {
    expect(JSON.parse(await px.ok(['apps:info', 'plain', '--json'])).network).toBe('shared');
    expect(await px.ok(['apps:info', 'plain'])).toMatch(/network:\s+shared/);
    const { network } = JSON.parse(await px.ok(['server:info', '--json']));
    expect(network).toMatchObject({ mode: 'shared', table: null });
    expect(await px.ok(['server:info'])).toMatch(/network:\s+shared \(.+\)/);
  });

  it.runIf(isRoot)('leaves no rules and no app cgroup behind', async () => {
    const scope = dataScope(path.resolve(px.data));
    expect((await run('nft', ['list', 'tables'])).stdout).not.toContain(`platformx_${scope}`);
    for (const root of ['/sys/fs/cgroup', '/sys/fs/cgroup/unified']) expect(fs.existsSync(path.join(root, `platformx-${scope}-net`))).toBe(false);
  });
});
