// The dashboard's only assets, served from /assets/ by the dashboard itself (the
// machine may have no internet: no CDN, no web font). The pages read fine
// without the script; it only makes the log live.

const CSS = `
:root { --fg: #1d2330; --muted: #5d6678; --line: #dde1e8; --bg: #f6f7f9; --card: #fff; --accent: #3856d6;
  --ok: #1b7f4b; --warn: #a86a00; --bad: #c02d2d; --s0: #3856d6; --s1: #d08a00; --s2: #c02d2d; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--fg); background: var(--bg); }
header.top { display: flex; align-items: center; gap: 20px; padding: 10px 24px; background: #1d2330; color: #fff; }
header.top a { color: #fff; text-decoration: none; }
header.top .brand { font-weight: 700; letter-spacing: .02em; }
header.top nav { flex: 1; }
header.top form { margin: 0; }
header.top button { background: transparent; color: #cfd6e4; border: 1px solid #48506a; border-radius: 4px; padding: 3px 10px; cursor: pointer; }
main { max-width: 1100px; margin: 0 auto; padding: 20px 24px 48px; }
h1 { font-size: 22px; margin: 4px 0 4px; display: flex; align-items: center; gap: 10px; }
h2 { font-size: 15px; margin: 28px 0 10px; text-transform: uppercase; letter-spacing: .05em; color: var(--muted); }
.sub { color: var(--muted); margin: 0 0 8px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 16px; }
table { width: 100%; border-collapse: collapse; background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { font-size: 12px; color: var(--muted); font-weight: 600; background: #fafbfc; }
tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, monospace; font-size: 12.5px; }
a { color: var(--accent); }
.state { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; background: #e9ecf2; color: var(--muted); }
.state-running, .state-up { background: #e3f4ea; color: var(--ok); }
.state-degraded, .state-starting, .state-restarting, .state-deploying, .state-building { background: #fdf1dc; color: var(--warn); }
.state-crashed, .state-failed { background: #fbe4e4; color: var(--bad); }
.state-succeeded { background: #e3f4ea; color: var(--ok); }
.current { font-weight: 700; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
.charts .card h3 { margin: 0 0 4px; font-size: 13px; }
svg.chart { width: 100%; height: auto; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis, svg .legend { fill: var(--muted); font-size: 11px; }
svg .line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
svg .series-0 { stroke: var(--s0); } svg .series-1 { stroke: var(--s1); } svg .series-2 { stroke: var(--s2); }
svg rect.series-0, svg circle.series-0 { fill: var(--s0); } svg rect.series-1, svg circle.series-1 { fill: var(--s1); } svg rect.series-2, svg circle.series-2 { fill: var(--s2); }
svg circle.dot { stroke: none; }
svg.sparkline { vertical-align: middle; }
form.inline { display: inline; margin: 0; }
button.action { background: var(--card); border: 1px solid var(--accent); color: var(--accent); border-radius: 4px; padding: 3px 10px; cursor: pointer; font-size: 12.5px; }
button.action:hover { background: var(--accent); color: #fff; }
.log { background: #11151d; color: #d7dce6; border-radius: 6px; padding: 10px 12px; height: 320px; overflow: auto; font: 12px/1.5 ui-monospace, "DejaVu Sans Mono", Menlo, monospace; white-space: pre-wrap; word-break: break-all; }
.log-time { color: #7d869a; } .log-tag { color: #8fb4ff; } .log-row.app .log-tag { color: #9fe0b0; } .log-row.deploy .log-tag { color: #ffd27a; }
.live-status { font-size: 12px; color: var(--muted); font-weight: 400; }
.banner { margin: 10px 0; padding: 8px 12px; border-radius: 6px; background: #e8edff; border: 1px solid #c6d1ff; }
pre.deploy-output { background: #11151d; color: #d7dce6; border-radius: 6px; padding: 12px; white-space: pre-wrap; word-break: break-all; font-size: 12.5px; }
pre.deploy-output .err { color: #ff9a9a; }
.ok { color: var(--ok); font-weight: 600; } .bad { color: var(--bad); font-weight: 600; }
.empty { color: var(--muted); }
.login { max-width: 560px; margin: 60px auto; }
`;

const LIVE_JS = `(function () {
  var box = document.getElementById('live-log');
  if (!box) return;
  box.scrollTop = box.scrollHeight;
  if (!window.EventSource) return;
  var status = document.getElementById('live-status');
  var say = function (t) { if (status) status.textContent = t; };
  var add = function (l) {
    var row = document.createElement('div');
    row.className = 'log-row ' + (l.tag.indexOf('app[') === 0 ? 'app' : l.tag === 'deploy' ? 'deploy' : 'platform');
    var parts = [['log-time', l.time.slice(0, 19).replace('T', ' ')], ['log-tag', l.tag], ['log-text', l.text]];
    parts.forEach(function (p, i) {
      var s = document.createElement('span');
      s.className = p[0];
      s.textContent = p[1];
      if (i) row.appendChild(document.createTextNode(' '));
      row.appendChild(s);
    });
    var atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 8;
    box.appendChild(row);
    while (box.children.length > 500) box.removeChild(box.firstElementChild);
    if (atEnd) box.scrollTop = box.scrollHeight;
  };
  var src = new EventSource(box.getAttribute('data-stream'));
  src.onopen = function () { say('live'); };
  src.onerror = function () { say(src.readyState === 2 ? 'stopped: reload the page' : 'reconnecting'); };
  src.addEventListener('line', function (e) { add(JSON.parse(e.data)); });
  src.addEventListener('release', function (e) {
    var r = JSON.parse(e.data);
    var banner = document.getElementById('release-banner');
    if (!banner) return;
    banner.hidden = false;
    banner.querySelector('.what').textContent = 'Release v' + r.version + ' ' + r.outcome + '. ';
  });
  src.addEventListener('end', function () { src.close(); say('session ended: sign in again'); });
})();
`;

export interface Asset {
  type: string;
  body: string;
}

const ICON = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#1d2330"/><path d="M3 11l3-4 3 2 4-5" stroke="#8fb4ff" stroke-width="2" fill="none"/></svg>';

export const ASSETS: Record<string, Asset> = {
  '/assets/icon.svg': { type: 'image/svg+xml', body: ICON },
  '/assets/dashboard.css': { type: 'text/css; charset=utf-8', body: CSS },
  '/assets/live.js': { type: 'text/javascript; charset=utf-8', body: LIVE_JS },
};
