// What each app has open through this proxy right now, for metrics: requests
// from routing until the client's response closes, and WebSockets (upgrades
// the app answered with 101) until their tunnel closes.

/** Per app: [requests, websockets] open now. */
export type OpenByApp = Record<string, [requests: number, websockets: number]>;

export class OpenExchanges {
  private readonly byApp = new Map<string, [number, number]>();

  /** One routed request (or upgrade not yet answered) to app. */
  begin(app: string): void {
    const c = this.byApp.get(app);
    if (c) c[0]++;
    else this.byApp.set(app, [1, 0]);
  }

  /** The app answered an upgrade with 101: that request is a WebSocket now. */
  upgraded(app: string): void {
    const c = this.byApp.get(app);
    if (!c) return;
    c[0]--;
    c[1]++;
  }

  end(app: string, upgraded: boolean): void {
    const c = this.byApp.get(app);
    if (!c) return;
    c[upgraded ? 1 : 0]--;
    if (c[0] === 0 && c[1] === 0) this.byApp.delete(app);
  }

  snapshot(): OpenByApp {
    const out: OpenByApp = {};
    for (const [app, c] of this.byApp) out[app] = [c[0], c[1]];
    return out;
  }
}

/** The sum of several processes' snapshots (each proxy worker counts its own). */
export function sumOpen(parts: readonly OpenByApp[]): OpenByApp {
  const out: OpenByApp = {};
  for (const part of parts) {
    for (const app of Object.keys(part)) {
      const [r, w] = part[app]!;
      const c = (out[app] ??= [0, 0]);
      c[0] += r;
      c[1] += w;
    }
  }
  return out;
}
