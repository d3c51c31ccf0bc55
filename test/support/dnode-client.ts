// The real dnode client, as the old SDK used it, with promise wrappers for the tests.
import dnode from 'dnode';

export interface Client {
  remote: Record<string, (...args: unknown[]) => void>;
  close(): void;
}

export function connect(port: number): Promise<Client> {
  return new Promise((resolve, reject) => {
    const d = dnode(undefined, { weak: false });
    d.on('remote', (remote: Client['remote']) => resolve({ remote, close: () => d.end() }));
    d.on('error', reject);
    d.connect(port);
  });
}

export type Answer = { err: { message?: string } | null; value: Record<string, string> | undefined };

export function call(client: Client, method: string, ...args: unknown[]): Promise<Answer> {
  return new Promise((resolve) => client.remote[method]!(...args, (err: Answer['err'], value: Answer['value']) => resolve({ err, value })));
}
