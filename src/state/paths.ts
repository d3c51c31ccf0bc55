import path from 'node:path';

/** Where everything lives in the data folder. One place, so no module guesses a path. */
export class DataPaths {
  readonly root: string;
  constructor(root: string) {
    this.root = path.resolve(root);
  }
  get stateFile() { return path.join(this.root, 'state.json'); }
  get serverInfo() { return path.join(this.root, 'server.json'); }
  get controlSocket() { return path.join(this.root, 'control.sock'); }
  get hostKey() { return path.join(this.root, 'ssh_host_ed25519_key'); }
  get runtimes() { return path.join(this.root, 'runtimes'); }
  get npmCache() { return path.join(this.root, 'cache', 'npm'); }
  get serverLog() { return path.join(this.root, 'server.log'); }
  get dataplaneSocket() { return path.join(this.root, 'dataplane.sock'); }
  get dataplaneLog() { return path.join(this.root, 'dataplane.log'); }
  get certsDir() { return path.join(this.root, 'certs'); }
  get couchdb() { return path.join(this.root, 'couchdb'); }
  appDir(app: string) { return path.join(this.root, 'apps', app); }
  repo(app: string) { return path.join(this.appDir(app), 'repo.git'); }
  releasesDir(app: string) { return path.join(this.appDir(app), 'releases'); }
  build(app: string, build: string) { return path.join(this.releasesDir(app), build); }
  buildLog(app: string, version: number) { return path.join(this.appDir(app), 'build-logs', `v${version}.log`); }
  upload(app: string) { return path.join(this.appDir(app), 'upload'); }
  logsDir(app: string) { return path.join(this.appDir(app), 'logs'); }
  appCache(app: string) { return path.join(this.appDir(app), 'cache'); }
}
