import type { AppDetail, AppSummary, LogRow, ProcessRow, ReleaseRow } from './app-view.js';
import type { Session } from './auth.js';
import { figure, lineChart, sparkline } from './charts.js';
import { html, SafeHtml } from './html.js';
import { appHref, bytes, duration, layout, percent, stateBadge, when } from './layout.js';

export function loginPage(message: string | null): SafeHtml {
  return layout({
    title: 'Sign in', session: null, body: html`<div class="login card">
    <h1>Sign in to platformx</h1>
    ${message ? html`<p class="bad">${message}</p>` : ''}
    <p>On the server, run <code>platformx dashboard:login</code> (or, with an admin key,
    <code>ssh -p 2222 git@HOST dashboard:login</code>) and open the URL it prints.
    A URL works once, within 10 minutes.</p></div>`,
  });
}

export function messagePage(title: string, message: string, session: Session | null): SafeHtml {
  return layout({ title, session, body: html`<h1>${title}</h1><p>${message}</p><p><a href="/apps">All apps</a></p>` });
}

function appRow(a: AppSummary): SafeHtml {
  return html`<tr>
    <td><a class="current" href="${appHref(a.name)}">${a.name}</a></td>
    <td>${stateBadge(a.state)} ${a.deploying !== null ? stateBadge(`deploying v${a.deploying}`) : ''}</td>
    <td>${a.release === null ? '-' : `v${a.release}`}</td>
    <td class="num">${a.processesUp}/${a.processes}</td>
    <td>${sparkline(a.perMinute, `${a.name}: requests a minute over the last hour`)} <span class="sub">${a.requestsLastHour} in the last hour</span></td>
    <td class="num">${percent(a.errorRate)}</td>
  </tr>`;
}

export function appsPage(apps: AppSummary[], session: Session): SafeHtml {
  const body = apps.length === 0
    ? html`<h1>Apps</h1><p class="empty">No apps yet: create one with <code>platformx apps:create NAME</code>.</p>`
    : html`<h1>Apps</h1><p class="sub">${apps.length} app${apps.length === 1 ? '' : 's'}</p>
    <table class="apps"><thead><tr><th>App</th><th>State</th><th>Release</th><th class="num">Processes</th>
    <th>Requests a minute, last hour</th><th class="num">5xx, last hour</th></tr></thead>
    <tbody>${apps.map(appRow)}</tbody></table>`;
  return layout({ title: 'Apps', session, body });
}

function releaseRow(app: string, r: ReleaseRow, session: Session): SafeHtml {
  const action = r.canRollback
    ? html`<form class="inline" method="post" action="${appHref(app, '/rollback')}">
        <input type="hidden" name="csrf" value="${session.csrf}"><input type="hidden" name="version" value="${r.version}">
        <button class="action" type="submit" data-rollback="${r.version}">Roll back to v${r.version}</button></form>`
    : r.current ? html`<span class="ok">serving</span>` : '';
  return html`<tr>
    <td class="${r.current ? 'current' : ''}">v${r.version}</td><td>${stateBadge(r.status)}</td><td>${r.source}</td>
    <td class="mono">${r.commit ?? '-'}</td><td>${r.description}</td><td>${r.by}</td><td class="mono">${when(r.createdAt)}</td><td>${action}</td>
  </tr>`;
}

function processRow(p: ProcessRow, limit: number): SafeHtml {
  return html`<tr>
    <td class="mono">${p.name}</td><td>v${p.release}</td><td>${stateBadge(p.state)}</td><td class="num">${p.pid ?? '-'}</td>
    <td class="num">${p.pid === null ? '-' : duration(p.uptimeSeconds)}</td><td class="num">${p.restarts}</td>
    <td class="num">${bytes(p.memoryBytes)} <span class="sub">of ${bytes(limit)}</span></td>
    <td class="num">${p.cpuPercent === null ? '-' : `${figure(p.cpuPercent)} %`}</td>
  </tr>`;
}

export function logRow(l: LogRow): SafeHtml {
  const kind = l.tag.startsWith('app[') ? 'app' : l.tag === 'deploy' ? 'deploy' : 'platform';
  return html`<div class="log-row ${kind}"><span class="log-time">${when(l.time)}</span> <span class="log-tag">${l.tag}</span> <span class="log-text">${l.text}</span></div>`;
}

function charts(d: AppDetail): SafeHtml {
  const s = d.series;
  const cards = [
    ['Requests a second', lineChart({ title: 'Requests a second, last hour', unit: '', series: [{ label: 'req/s', values: s.map((p) => p.perSecond) }] })],
    ['Latency', lineChart({
      title: 'Latency p50, p95 and p99 in ms, last hour', unit: ' ms',
      series: [{ label: 'p50', values: s.map((p) => p.p50) }, { label: 'p95', values: s.map((p) => p.p95) }, { label: 'p99', values: s.map((p) => p.p99) }],
    })],
    ['5xx rate', lineChart({
      title: 'Share of 5xx answers in %, last hour', unit: ' %',
      series: [{ label: '5xx %', values: s.map((p) => (p.requests ? (100 * p.errors5xx) / p.requests : null)) }],
    })],
  ] as const;
  return html`<div class="charts">${cards.map(([t, svg]) => html`<div class="card"><h3>${t}</h3>${svg}</div>`)}</div>`;
}

export function appPage(d: AppDetail, session: Session): SafeHtml {
  const body = html`
  <h1>${d.name} ${stateBadge(d.state)} ${d.deploying !== null ? stateBadge(`deploying v${d.deploying}`) : ''}</h1>
  <p class="sub">${d.release === null ? 'nothing deployed yet' : `v${d.release} serves`} · ${d.hosts.join(', ')} ·
    ${d.requestsLastHour} requests and ${percent(d.errorRate)} 5xx in the last hour</p>
  <div id="release-banner" class="banner" hidden><span class="what"></span><a href="${appHref(d.name)}">Reload to see it</a></div>
  <h2>Traffic, last hour</h2>${charts(d)}
  <h2>Processes</h2>
  ${d.processRows.length === 0 ? html`<p class="empty">No process runs.</p>` : html`<table id="processes"><thead><tr><th>Process</th><th>Release</th><th>State</th>
    <th class="num">PID</th><th class="num">Uptime</th><th class="num">Restarts</th><th class="num">Memory</th><th class="num">CPU</th></tr></thead>
    <tbody>${d.processRows.map((p) => processRow(p, d.memoryLimitBytes))}</tbody></table>`}
  <h2>Releases</h2>
  ${d.releases.length === 0 ? html`<p class="empty">No release yet: push code to deploy.</p>` : html`<table id="releases"><thead><tr><th>Release</th><th>Status</th><th>Source</th>
    <th>Commit</th><th>Description</th><th>By</th><th>Created (UTC)</th><th></th></tr></thead>
    <tbody>${d.releases.map((r) => releaseRow(d.name, r, session))}</tbody></table>`}
  <h2>Config vars</h2>
  <p>${d.configKeys.length === 0 ? html`<span class="empty">none set</span>` : d.configKeys.map((k, i) => html`${i ? ', ' : ''}<code>${k}</code>`)}
    <span class="sub">(names only: values are not shown here; see <code>platformx config ${d.name}</code>)</span></p>
  <h2>Log <span id="live-status" class="live-status">the last ${d.log.length} lines</span></h2>
  <div id="live-log" class="log" data-stream="${appHref(d.name, '/live')}">${d.log.map(logRow)}</div>`;
  return layout({ title: d.name, session, body, live: true });
}

/** Where the streamed lines go; escaped content can never hold a '<', so it cannot fake it. */
const OUTPUT = new SafeHtml('<!--output-->');

/** The top of the page a rollback streams its output into, as `git push` shows a deploy. */
export function deployStart(app: string, what: string, session: Session): string {
  const page = layout({ title: `${what} · ${app}`, session, body: html`<h1>${what}</h1><pre class="deploy-output">${OUTPUT}</pre>` }).text;
  return page.slice(0, page.indexOf(OUTPUT.text));
}

export function deployLine(text: string, isError: boolean): string {
  return (isError ? html`<span class="err">${text}</span>` : html`${text}`).text;
}

/** Closes the streamed page: the outcome and the way back. */
export function deployEnd(app: string, ok: boolean, session: Session): string {
  const page = layout({ title: app, session, body: html`<pre class="deploy-output">${OUTPUT}</pre>
    <p class="${ok ? 'ok' : 'bad'}">${ok ? 'Done.' : 'It did not go through; the release that served before still serves.'}</p>
    <p><a id="back" href="${appHref(app)}">Back to ${app}</a></p>` }).text;
  return page.slice(page.indexOf(OUTPUT.text) + OUTPUT.text.length);
}
