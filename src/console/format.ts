import type { EventRow } from '../audit/event-log.ts';
import { html, type Markup } from './html.ts';

/** "42 min", "3 h 5 min", "expired": how long until `iso`, from `now`. */
export function timeLeft(iso: string, now: number = Date.now()): string {
  const ms = Date.parse(iso) - now;
  if (!(ms > 0)) return 'expired';
  const minutes = Math.ceil(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days`;
}

/** A timestamp as a <time> element (UTC, to the minute). */
export function when(iso: string | null): Markup {
  if (!iso) return html`<span class="muted">—</span>`;
  return html`<time datetime="${iso}">${iso.slice(0, 16).replace('T', ' ')} UTC</time>`;
}

/** A list of strings, comma-separated, or a dash. */
export function list(items: readonly string[]): Markup {
  return items.length > 0 ? html`${items.join(', ')}` : html`<span class="muted">—</span>`;
}

/** A JSON value, pretty-printed as text (hostile content stays text). */
export function json(value: unknown): Markup {
  return html`<pre>${JSON.stringify(value, null, 2)}</pre>`;
}

/** A grant's chained events (oldest first): when, what, who, why, and the event's hash. */
export function historyTable(events: readonly EventRow[], caption: string): Markup {
  if (events.length === 0) return html`<p class="muted">No events.</p>`;
  return html`<table>
    <caption class="muted">${caption}</caption>
    <thead><tr><th scope="col">When</th><th scope="col">Event</th><th scope="col">By</th><th scope="col">Reason</th><th scope="col">Hash</th></tr></thead>
    <tbody>${events.map(
      (event) => html`<tr>
        <td>${when(event.occurred_at)}</td>
        <td>${event.action}</td>
        <td class="text">${event.actor}</td>
        <td class="text">${event.reason ?? ''}</td>
        <td><code>${event.hash.slice(0, 16)}…</code></td>
      </tr>`,
    )}</tbody>
  </table>`;
}
