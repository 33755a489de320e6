// The last hour as an inline SVG: deliveries per minute as bars, the
// failure rate (failed attempts / attempts) as a line on a 0–100 % scale.
// Every label is a number or a fixed text; hovering a bar shows its minute.
import { html } from "npm:hono@^4.13.19/html";
import type { Minute } from "../_admin_queries.ts";

const WIDTH = 720;
const HEIGHT = 180;
const LEFT = 44;
const RIGHT = 44;
const TOP = 12;
const BOTTOM = 24;

/** Renders 60 minutes as an SVG chart. */
export function chart(minutes: Minute[]): ReturnType<typeof html> {
  const plotW = WIDTH - LEFT - RIGHT;
  const plotH = HEIGHT - TOP - BOTTOM;
  const max = Math.max(1, ...minutes.map((m) => m.delivered));
  const step = plotW / minutes.length;
  const bars = minutes.map((m, i) => {
    const h = (m.delivered / max) * plotH;
    const attempts = m.delivered + m.failed;
    const rate = attempts === 0 ? 0 : Math.round((m.failed / attempts) * 100);
    return html`
      <rect class="bar" x="${(LEFT + i * step + 1).toFixed(
        1,
      )}" y="${(TOP + plotH - h).toFixed(1)}" width="${(step - 2).toFixed(1)}"
        height="${h.toFixed(1)}">
        <title>${m.start.toISOString().slice(11, 16)} UTC: ${m
          .delivered} delivered, ${m.failed} failed (${rate} %)</title>
      </rect>
    `;
  });
  const points = minutes.flatMap((m, i) => {
    const attempts = m.delivered + m.failed;
    if (attempts === 0) return [];
    const x = LEFT + i * step + step / 2;
    const y = TOP + plotH - (m.failed / attempts) * plotH;
    return [`${x.toFixed(1)},${y.toFixed(1)}`];
  });
  const dots = points.map((p) => {
    const [x, y] = p.split(",");
    return html`<circle class="rate" cx="${x}" cy="${y}" r="2.5"></circle>`;
  });
  const total = minutes.reduce((s, m) => s + m.delivered, 0);
  const failed = minutes.reduce((s, m) => s + m.failed, 0);
  return html`
    <svg class="chart" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img"
      aria-label="Last hour: ${total} delivered, ${failed} failed attempts">
    <line class="axis" x1="${LEFT}" y1="${TOP + plotH}" x2="${WIDTH -
      RIGHT}" y2="${TOP + plotH}"></line>
    <line class="grid" x1="${LEFT}" y1="${TOP}" x2="${WIDTH -
      RIGHT}" y2="${TOP}"></line>
    <text class="label" x="${LEFT - 6}" y="${TOP +
      4}" text-anchor="end">${max}/min</text>
    <text class="label" x="${LEFT - 6}" y="${TOP +
      plotH}" text-anchor="end">0</text>
    <text class="label rate-label" x="${WIDTH - RIGHT + 6}" y="${TOP +
      4}">100 %</text>
    <text class="label rate-label" x="${WIDTH - RIGHT + 6}" y="${TOP +
      plotH}">0 %</text>
    <text class="label" x="${LEFT}" y="${HEIGHT - 6}">−60 min</text>
    <text class="label" x="${WIDTH - RIGHT}" y="${HEIGHT -
      6}" text-anchor="end">now</text>
    ${bars}
    ${points.length > 1
      ? html`<polyline class="rate" points="${points.join(" ")}"></polyline>`
      : ""}
    ${dots}
    </svg>
  `;
}
