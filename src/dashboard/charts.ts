import { html, type SafeHtml } from './html.js';

// Charts as inline SVG drawn on the server: no script, no library, readable
// without JavaScript. Colours come from the stylesheet's .series-N classes.

export interface Series {
  label: string;
  /** One value a minute, oldest first; null where there is nothing to show (a quiet minute's latency). */
  values: (number | null)[];
}

export interface ChartSpec {
  title: string;
  /** Appended to the axis figures: " req/s", " ms", " %". */
  unit: string;
  series: Series[];
}

/** A short figure: 0.25, 3.4, 120. */
export function figure(n: number): string {
  if (n === 0) return '0';
  if (Math.abs(n) >= 100) return String(Math.round(n));
  if (Math.abs(n) >= 10) return n.toFixed(1).replace(/\.0$/, '');
  return n.toFixed(2).replace(/\.?0+$/, '');
}

/** The smallest of 1, 2, 2.5, 5 × 10^k at or above n (so the axis reads in round figures). */
export function niceCeiling(n: number): number {
  if (!(n > 0)) return 1;
  const exp = Math.pow(10, Math.floor(Math.log10(n)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * exp >= n) return m * exp;
  return 10 * exp;
}

/** Path data for values scaled into the box; a null breaks the line. */
function linePath(values: (number | null)[], x: (i: number) => number, y: (v: number) => number): string {
  let d = '';
  let pen = false;
  values.forEach((v, i) => {
    if (v === null) {
      pen = false;
      return;
    }
    d += `${pen ? 'L' : 'M'}${x(i).toFixed(1)} ${y(v).toFixed(1)}`;
    pen = true;
  });
  return d;
}

/** A point with no neighbour draws no line: it gets a dot, so a lone busy minute still shows. */
function dots(values: (number | null)[], x: (i: number) => number, y: (v: number) => number, series: number): SafeHtml[] {
  return values.flatMap((v, i) => (v !== null && values[i - 1] == null && values[i + 1] == null
    ? [html`<circle class="dot series-${series}" cx="${x(i).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2.5"/>`] : []));
}

/** A line chart of the last hour with a y axis in round figures, an x axis in minutes and a legend. */
export function lineChart(spec: ChartSpec): SafeHtml {
  // Drawn at about the size a card shows it, so the axis text stays readable.
  const width = 360;
  const height = 180;
  const left = 52, right = 8, top = 10, bottom = 40;
  const n = Math.max(2, ...spec.series.map((s) => s.values.length));
  const max = niceCeiling(Math.max(0, ...spec.series.flatMap((s) => s.values.filter((v): v is number => v !== null))));
  const x = (i: number) => left + (i * (width - left - right)) / (n - 1);
  const y = (v: number) => top + (height - top - bottom) * (1 - v / max);
  const grid = [0, max / 2, max].map((v) => html`
    <line class="grid" x1="${left}" x2="${width - right}" y1="${y(v).toFixed(1)}" y2="${y(v).toFixed(1)}"/>
    <text class="axis" x="${left - 6}" y="${(y(v) + 4).toFixed(1)}" text-anchor="end">${figure(v)}${spec.unit}</text>`);
  const ticks = [[0, '60 min ago'], [(n - 1) / 2, '30 min ago'], [n - 1, 'now']] as const;
  const xAxis = ticks.map(([i, label], k) => html`
    <text class="axis" x="${x(i).toFixed(1)}" y="${height - bottom + 16}" text-anchor="${k === 0 ? 'start' : k === 2 ? 'end' : 'middle'}">${label}</text>`);
  const lines = spec.series.map((s, i) => html`
    <path class="line series-${i}" d="${linePath(s.values, x, y)}"><title>${s.label}</title></path>${dots(s.values, x, y, i)}`);
  const legend = spec.series.map((s, i) => html`
    <rect class="swatch series-${i}" x="${left + i * 70}" y="${height - 14}" width="10" height="10"/>
    <text class="legend" x="${left + i * 70 + 14}" y="${height - 5}">${s.label}</text>`);
  return html`<svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${spec.title}">
    <title>${spec.title}</title>${grid}${xAxis}${lines}${legend}
  </svg>`;
}

/** A small line of the last hour for a table cell. */
export function sparkline(values: number[], label: string): SafeHtml {
  const width = 120, height = 24;
  const max = Math.max(1, ...values);
  const n = Math.max(2, values.length);
  const x = (i: number) => (i * (width - 2)) / (n - 1) + 1;
  const y = (v: number) => height - 2 - ((height - 4) * v) / max;
  return html`<svg class="sparkline" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="${label}">
    <title>${label}</title><path class="line series-0" d="${linePath(values, x, y)}"/>
  </svg>`;
}
