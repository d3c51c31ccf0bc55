// dnode 1.2.2 ships no types; this covers what the legacy endpoint uses.
declare module 'dnode' {
  import type { EventEmitter } from 'node:events';
  import type { Duplex } from 'node:stream';

  interface DnodeOptions {
    weak?: boolean;
  }
  interface Dnode extends Duplex {
    on(event: 'remote', listener: (remote: any, d: Dnode) => void): this;
    on(event: 'error' | 'fail', listener: (err: Error) => void): this;
    on(event: string, listener: (...args: any[]) => void): this;
    connect(port: number, host?: string, cb?: (remote: any, conn: any) => void): Dnode;
    listen(port: number, host?: string, cb?: () => void): EventEmitter & { close(): void };
    end(): void;
  }
  type Cons = Record<string, unknown> | ((this: any, remote: any, conn: any) => Record<string, unknown> | void);
  function dnode(cons?: Cons, opts?: DnodeOptions): Dnode;
  export default dnode;
}
