// Pages and charts as functions of their data: every app-supplied string is
// escaped, and the charts draw what the minutes hold.
import { describe, expect, it } from 'vitest';
import type { AppDetail } from '../src/dashboard/app-view.js';
import { parseLogLine } from '../src/dashboard/app-view.js';
import type { Session } from '../src/dashboard/auth.js';
import { lineChart, niceCeiling, sparkline } from '../src/dashboard/charts.js';
import { escapeHtml, html } from '../src/dashboard/html.js';
import { appPage, appsPage, deployEnd, deployLine, deployStart } from '../src/dashboard/pages.js';

const EVIL = `<script>alert("x")</script>'"&<img src=x onerror=alert(1)>`;
const session: Session = { caller: { kind: 'local', name: 'local' }, csrf: 'csrf-token-1', createdAt: 0, lastSeen: 0 };

/** What is left of a page once every tag we wrote is known to be ours: no tag from the input survives. */
function tags(page: string): string[] {
  return [...page.matchAll(/<\s*(script|img|iframe|svg|a)\b[^>]*>/gi)].map((m) => m[0]);
}

function detail(): AppDetail {
  const minute = 29_000_000;
  return {
    name: 'web', state: 'running', release: 3, deploying: 4, processesUp: 1, processes: 1,
    perMinute: Array.from({ length: 60 }, (_, i) => i), requestsLastHour: 1770, errorRate: 0.01,
    hosts: ['web.localhost'], memoryLimitBytes: 512 * 1024 * 1024, configKeys: ['API_KEY'],
    releases: [
      { version: 3, current: true, status: 'succeeded', source: 'git', commit: 'abc1234', description: EVIL, by: EVIL, createdAt: '2025-01-01T00:00:00.000Z', canRollback: false },
      { version: 2, current: false, status: 'failed', source: 'git', commit: null, description: `git push (failed: ${EVIL})`, by: 'ci', createdAt: '2025-01-01T00:00:00.000Z', canRollback: false },
      { version: 1, current: false, status: 'succeeded', source: 'git', commit: 'def5678', description: 'first', by: 'ci', createdAt: '2025-01-01T00:00:00.000Z', canRollback: true },
    ],
    processRows: [{ name: 'web.1', release: 3, pid: 10, state: 'up', uptimeSeconds: 3700, restarts: 2, memoryBytes: 50 * 1024 * 1024, cpuPercent: 12.5 }],
    series: Array.from({ length: 60 }, (_, i) => ({
      minute: minute + i, requests: i, perSecond: i / 60, errors5xx: i % 10 === 0 ? 1 : 0,
      p50: i ? 2 : null, p95: i ? 20 : null, p99: i ? 200 : null,
    })),
    log: [parseLogLine(`2025-01-01T00:00:00.000Z app[web.1]: ${EVIL}`), { time: '', tag: 'deploy', text: EVIL }],
  };
}

describe('escaping', () => {
  it('html`` escapes every value unless it is html`` itself', () => {
    expect(escapeHtml(EVIL)).toBe('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&quot;&amp;&lt;img src=x onerror=alert(1)&gt;');
    const inner = html`<b>${EVIL}</b>`;
    expect(html`<p title="${EVIL}">${inner}${[EVIL, null, false, undefined, 0]}</p>`.text)
      .toBe(`<p title="${escapeHtml(EVIL)}"><b>${escapeHtml(EVIL)}</b>${escapeHtml(EVIL)}0</p>`);
  });

  it('the app page shows hostile descriptions, names and log lines as text', () => {
    const page = appPage(detail(), session).text;
    expect(page).not.toContain('<script>alert');
    expect(page).not.toContain('<img src=x');
    expect(page.split(escapeHtml(EVIL)).length - 1).toBe(5);
    // Only our own tags: the stylesheet link, the live script, the charts and links.
    expect(tags(page).filter((t) => /^<script/i.test(t))).toEqual(['<script src="/assets/live.js" defer>']);
    expect(tags(page).filter((t) => /^<img/i.test(t))).toEqual([]);
    expect(page).toContain('value="csrf-token-1"');
    expect(page).toContain('<button class="action" type="submit" data-rollback="1">Roll back to v1</button>');
    expect(page.match(/data-rollback=/g)).toHaveLength(1);
  });

  it('a streamed rollback page escapes the output and closes what it opened', () => {
    const page = deployStart('web', 'Rolling back web to v1', session) + deployLine(`${EVIL}\n`, false) + deployLine('error: x\n', true) + deployEnd('web', false, session);
    expect(page).not.toContain('<script>alert');
    expect(page).toContain(`<pre class="deploy-output">${escapeHtml(EVIL)}\n<span class="err">error: x\n</span></pre>`);
    expect(page).toContain('the release that served before still serves');
    expect(page.endsWith('</html>')).toBe(true);
  });

  it('the apps page lists each app with its sparkline', () => {
    const d = detail();
    const page = appsPage([d, { ...d, name: 'other', release: null, state: 'not deployed', perMinute: Array(60).fill(0), errorRate: null }], session).text;
    expect(page.match(/<svg class="sparkline"/g)).toHaveLength(2);
    expect(page).toContain('href="/apps/other"');
    expect(page).toContain('deploying v4');
    expect(page).toContain('1.0 %');
  });
});

describe('charts', () => {
  it('scale to a round ceiling, break the line at quiet minutes, and dot a lone point', () => {
    expect([0, 0.3, 1, 7, 12, 230, 2600].map(niceCeiling)).toEqual([1, 0.5, 1, 10, 20, 250, 5000]);
    const svg = lineChart({ title: 'Latency', unit: ' ms', series: [{ label: 'p50', values: [null, 4, 8, null, null, 3, null, 10] }] }).text;
    const d = /<path class="line series-0" d="([^"]+)"/.exec(svg)![1]!;
    expect(d.match(/M/g)).toHaveLength(3);
    expect(d.match(/L/g)).toHaveLength(1);
    expect(svg.match(/<circle class="dot series-0"/g)).toHaveLength(2);
    expect(svg).toContain('>10 ms</text>');
    expect(svg).toContain('<title>Latency</title>');
    // The highest value touches the top grid line: 10 of a ceiling of 10.
    const ys = [...svg.matchAll(/cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    expect(Math.min(...ys)).toBe(10);
    expect(sparkline([0, 0, 5], 'x').text).toMatch(/d="M1\.0 22\.0L60\.0 22\.0L119\.0 2\.0"/);
  });
});
