// V8 flags for the processes that run the proxy. The proxy allocates short-lived
// objects for every request; with V8's default young generation it spends
// about an eighth of its CPU in scavenges. A larger one lets far fewer of them
// run: ~15 % more requests a second through one worker on this 2-core VM
// (docs/performance.md, "Young generation"), for a few tens of MB of RSS.
export const PROXY_WORKER_FLAGS: readonly string[] = ['--max-semi-space-size=32'];
