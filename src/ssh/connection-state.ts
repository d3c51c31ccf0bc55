// What one SSH connection carries from event to event: who authenticated, the
// failed attempts, the open channels (capped) and those running something (an
// authenticated connection running nothing is closed after the idle timeout).
import type net from 'node:net';
import type { Connection } from 'ssh2';
import type { Caller } from '../control/types.js';
import type { SshLimits } from './connection-limits.js';

export interface ConnectionStateInit {
  client: Connection;
  /** Normalized peer address, for log lines. */
  ip: string;
  /** The TCP socket ssh2 runs on, when it was found. */
  socket?: net.Socket;
  /** Destroys the socket unless authentication succeeds in time. */
  authTimer?: NodeJS.Timeout;
  limits: Pick<SshLimits, 'maxAuthAttempts' | 'maxChannelsPerConnection' | 'idleTimeoutMs'>;
  log: (line: string) => void;
}

export class ConnectionState {
  /** Set once a key's signature verifies; no channel opens before. */
  caller: Caller | null = null;
  readonly ip: string;
  private failures = 0;
  private channels = 0;
  private running = 0;
  private idleTimer: NodeJS.Timeout | null = null;
  private readonly abort = new AbortController();

  constructor(private readonly init: ConnectionStateInit) {
    this.ip = init.ip;
  }

  /** Ends the connection; a client that ignores the disconnect still loses its socket. */
  drop(): void {
    this.init.client.end();
    setTimeout(() => this.init.socket?.destroy(), 1000).unref();
  }

  /** Counts a failed authentication attempt; true when it reaches the limit. */
  authFailed(): boolean {
    return ++this.failures >= this.init.limits.maxAuthAttempts;
  }

  /** Authentication succeeded: the auth timeout no longer applies, the idle one does. */
  ready(): void {
    clearTimeout(this.init.authTimer);
    this.init.log(`key ${this.caller?.name} connected from ${this.ip}`);
    this.updateIdle();
  }

  /** The connection is gone: ends every channel's work. */
  closed(): void {
    this.abort.abort();
    if (this.idleTimer) clearTimeout(this.idleTimer);
    clearTimeout(this.init.authTimer);
  }

  /** The caller, when a new channel may open (authenticated and under the channel cap); else null. */
  channelCaller(): Caller | null {
    return this.caller && this.channels < this.init.limits.maxChannelsPerConnection ? this.caller : null;
  }

  /** Counts a channel until the returned release() runs (once), which the connection's end also runs. */
  openChannel(onRelease?: () => void): () => void {
    this.channels++;
    const signal = this.abort.signal;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.channels--;
      signal.removeEventListener('abort', release);
      onRelease?.();
    };
    signal.addEventListener('abort', release, { once: true });
    return release;
  }

  /** A command, push or forward starts: the connection is not idle until workEnded(). */
  workStarted(): void {
    this.running++;
    this.updateIdle();
  }

  workEnded(): void {
    this.running--;
    this.updateIdle();
  }

  private updateIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    if (this.running === 0 && this.caller && !this.abort.signal.aborted) {
      this.idleTimer = setTimeout(() => {
        this.init.log(`closing idle connection of key ${this.caller?.name} from ${this.ip}`);
        this.drop();
      }, this.init.limits.idleTimeoutMs);
      this.idleTimer.unref();
    }
  }
}
