import { test } from 'vitest';
import { loadOrCreateHostKey } from '../src/ssh/host-key.js';
import { parsePublicKey } from '../src/ssh/public-keys.js';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
test('scratch', () => {
fs.mkdirSync('/tmp/hk', {recursive:true});
fs.rmSync('/tmp/hk/key', {force:true});
const k = loadOrCreateHostKey('/tmp/hk/key');
console.log(k.fingerprint, k.publicKey);
console.log(loadOrCreateHostKey('/tmp/hk/key').fingerprint);
console.log(execFileSync('ssh-keygen', ['-lf', '/tmp/hk/key']).toString());
for (const f of ['/tmp/hk/key.pub']) console.log(parsePublicKey(fs.readFileSync(f,'utf8')).fingerprint);
for (const bad of ['garbage', fs.readFileSync('/tmp/hk/key','utf8'), 'ssh-ed25519 AAAAxyz', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC hello']) { try { parsePublicKey(bad); console.log('accepted?!') } catch (e) { console.log((e as Error).message) } }
});
