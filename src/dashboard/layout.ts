import type { Session } from './auth.js';
import { html, type SafeHtml } from './html.js';

/** The frame of every page; with a session, the navigation and the logout button (a CSRF-checked POST). */
export function layout(opts: { title: string; session: Session | null; body: SafeHtml; live?: boolean }): SafeHtml {
  const nav = opts.session
    ? html`<nav><a href="/apps">Apps</a></nav>
      <form method="post" action="/logout"><input type="hidden" name="csrf" value="${opts.session.csrf}"><button type="submit">Log out</button></form>`
    : html`<nav></nav>`;
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${opts.title} · platformx</title><link rel="stylesheet" href="/assets/dashboard.css"><link rel="icon" href="/assets/icon.svg">
${opts.live ? html`<script src="/assets/live.js" defer></script>` : ''}</head>
<body><header class="top"><a class="brand" href="/apps">platformx</a>${nav}</header>
<main>${opts.body}</main></body></html>`;
}

export function bytes(n: number | null): string {
  if (n === null) return '-';
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${Math.round(n / 1024)} kB`;
}

export function duration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${seconds % 60}s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m`;
  return `${Math.floor(seconds / 86400)}d ${Math.floor((seconds % 86400) / 3600)}h`;
}

export function percent(share: number | null): string {
  return share === null ? '-' : `${(share * 100).toFixed(share < 0.1 ? 1 : 0)} %`;
}

/** "2025-01-31 14:02:07" from an ISO time (UTC, as the logs write it). */
export function when(iso: string): string {
  return iso.slice(0, 19).replace('T', ' ');
}

export function stateBadge(state: string): SafeHtml {
  const cls = state.split(' ')[0]!.replace(/[^a-z]/g, '');
  return html`<span class="state state-${cls}">${state}</span>`;
}

export function appHref(app: string, rest = ''): string {
  return `/apps/${encodeURIComponent(app)}${rest}`;
}
