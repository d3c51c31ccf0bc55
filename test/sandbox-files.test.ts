// The server reading and writing files in folders an app controls: nothing the app
// planted (symlinks, FIFOs, devices, huge files) makes it read or write elsewhere,
// block, or exhaust memory.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppFileError, appPathExists, readAppFile, readAppText, writeAppFile } from '../src/apprunner/sandbox-files.js';
import { detectProcessTypes } from '../src/maestro/process-types.js';

let tmp: string;
let app: string;
let secret: string;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pxsf-'));
  app = path.join(tmp, 'app');
  fs.mkdirSync(app);
  secret = path.join(tmp, 'secret.env');
  fs.writeFileSync(secret, 'DATABASE_URL=postgres://victim:pw@db\n', { mode: 0o600 });
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('readAppFile', () => {
  it('reads a regular file, and gives null for a missing file or folder', () => {
    fs.writeFileSync(path.join(app, 'Procfile'), 'web: node server.js\n');
    fs.mkdirSync(path.join(app, 'node_modules'));
    fs.writeFileSync(path.join(app, 'node_modules', '.stamp'), 'k');
    expect(readAppText(app, 'Procfile')).toBe('web: node server.js\n');
    expect(readAppText(app, 'node_modules/.stamp')).toBe('k');
    expect(readAppFile(app, 'app.json')).toBeNull();
    expect(readAppFile(app, 'missing/.stamp')).toBeNull();
  });

  it('refuses a symlink, to a file or through a folder, without showing what it points at', () => {
    fs.symlinkSync(secret, path.join(app, 'Procfile'));
    fs.symlinkSync(tmp, path.join(app, 'node_modules'));
    const err = (() => { try { readAppFile(app, 'Procfile'); } catch (e) { return e as Error; } })();
    expect(err).toBeInstanceOf(AppFileError);
    expect(err!.message).toBe('Procfile is a symbolic link: the platform reads only regular files of the app');
    expect(() => readAppFile(app, 'node_modules/secret.env')).toThrow(/node_modules is not a folder/);
  });

  it('refuses /dev/zero behind a symlink, a device, a FIFO and an oversized file without reading them', () => {
    fs.symlinkSync('/dev/zero', path.join(app, 'package.json'));
    expect(() => readAppFile(app, 'package.json')).toThrow(AppFileError);
    expect(() => readAppFile('/dev', 'zero')).toThrow('zero is not a regular file');
    execFileSync('mkfifo', [path.join(app, 'Procfile')]);
    // O_NONBLOCK: opening a FIFO no one writes to returns at once instead of blocking the server.
    expect(() => readAppFile(app, 'Procfile')).toThrow('Procfile is not a regular file');
    fs.writeFileSync(path.join(app, 'app.json'), Buffer.alloc(2048, 0x20));
    expect(() => readAppFile(app, 'app.json', 1024)).toThrow('app.json is larger than 1024 bytes');
    expect(readAppFile(app, 'app.json', 4096)!.length).toBe(2048);
  });

  it('takes only plain relative paths', () => {
    expect(() => readAppFile(app, '../secret.env')).toThrow(/not a plain relative path/);
    expect(() => readAppFile(app, secret)).toThrow(/not a plain relative path/);
  });
});

describe('writeAppFile', () => {
  it('writes a regular file, replacing what was there', () => {
    fs.mkdirSync(path.join(app, 'node_modules'));
    fs.writeFileSync(path.join(app, 'node_modules', '.stamp'), 'a much longer old content');
    expect(writeAppFile(app, 'node_modules/.stamp', 'key\n')).toBe(true);
    expect(fs.readFileSync(path.join(app, 'node_modules', '.stamp'), 'utf8')).toBe('key\n');
    expect(writeAppFile(app, 'missing/.stamp', 'key\n')).toBe(false);
  });

  it('never writes through a symlink the app planted', () => {
    fs.mkdirSync(path.join(app, 'node_modules'));
    fs.symlinkSync(secret, path.join(app, 'node_modules', '.stamp'));
    expect(() => writeAppFile(app, 'node_modules/.stamp', 'key\n')).toThrow(AppFileError);
    fs.rmSync(path.join(app, 'node_modules'), { recursive: true });
    fs.symlinkSync(tmp, path.join(app, 'node_modules'));
    expect(() => writeAppFile(app, 'node_modules/.stamp', 'key\n')).toThrow(/not a folder/);
    expect(fs.existsSync(path.join(tmp, '.stamp'))).toBe(false);
    expect(fs.readFileSync(secret, 'utf8')).toBe('DATABASE_URL=postgres://victim:pw@db\n');
  });

  it('does not block on a FIFO', () => {
    fs.mkdirSync(path.join(app, 'node_modules'));
    execFileSync('mkfifo', [path.join(app, 'node_modules', '.stamp')]);
    expect(() => writeAppFile(app, 'node_modules/.stamp', 'key\n')).toThrow('node_modules/.stamp is not a regular file');
  });
});

describe('appPathExists and the start-command probe', () => {
  it("tells whether something is in the app's folder without following a link out of it", () => {
    fs.writeFileSync(path.join(app, 'server.js'), '');
    fs.mkdirSync(path.join(app, 'lib'));
    expect(appPathExists(app, 'server.js')).toBe(true);
    expect(appPathExists(app, './server.js')).toBe(true);
    expect(appPathExists(app, 'lib/')).toBe(true);
    expect(appPathExists(app, 'lib/missing.js')).toBe(false);
    // A link is there whatever it points at: a host path behind it is never looked at.
    fs.symlinkSync(secret, path.join(app, 'present.js'));
    fs.symlinkSync(path.join(tmp, 'no-such-file'), path.join(app, 'absent.js'));
    expect(appPathExists(app, 'present.js')).toBe(appPathExists(app, 'absent.js'));
    fs.symlinkSync(tmp, path.join(app, 'up'));
    expect(() => appPathExists(app, 'up/secret.env')).toThrow(/up is not a folder/);
    expect(() => appPathExists(app, '../secret.env')).toThrow(AppFileError);
    expect(() => appPathExists(app, 'lib/../../secret.env')).toThrow(/outside the app's folder/);
    expect(() => appPathExists(app, secret)).toThrow(/outside the app's folder/);
  });

  it("package.json main cannot probe host paths: one outside the app is refused, a link is not followed", () => {
    const main = (m: string) => fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'a', main: m }));
    // The secret exists and the other path does not; before, `node <main>` was chosen only for the first.
    main(`../${path.basename(secret)}`);
    expect(() => detectProcessTypes(app, 'a')).toThrow(/package\.json main: \.\.\/secret\.env is outside the app's folder/);
    main(secret);
    expect(() => detectProcessTypes(app, 'a')).toThrow(AppFileError);
    fs.symlinkSync(tmp, path.join(app, 'host'));
    main('host/secret.env');
    expect(() => detectProcessTypes(app, 'a')).toThrow(/host is not a folder/);
    main('lib/server.js');
    fs.mkdirSync(path.join(app, 'lib'));
    fs.writeFileSync(path.join(app, 'lib', 'server.js'), '');
    expect(detectProcessTypes(app, 'a').types.web).toEqual(['node', 'lib/server.js']);
  });
});
