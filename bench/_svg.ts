// A hand-written SVG bar chart (no dependencies) of latency by mode: one bar
// per mode to its p50, a whisker from p10 to p90, groups stacked, a dashed
// line at each group's baseline p50. Used by trigger_bench.ts.

/** One bar: quantiles in µs. */
export interface Bar {
  label: string;
  p10: number;
  p50: number;
  p90: number;
  /** Fill colour. */
  color: string;
  /** Text after the value, such as a ratio or a loss count. */
  note?: string;
}

/** Bars under one heading, with the p50 the ratios refer to. */
export interface BarGroup {
  title: string;
  baseline: number;
  bars: Bar[];
}

const escape = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** A "nice" axis maximum: 1, 2 or 5 times a power of ten, at least `value`. */
function niceMax(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (step * power >= value) return step * power;
  }
  return 10 * power;
}

/** Renders `groups` as an SVG document titled `title`, `caption` below. */
export function latencySvg(
  title: string,
  caption: string,
  groups: BarGroup[],
): string {
  const width = 1120;
  const left = 330; // labels
  const plot = 440; // bar area
  const rowHeight = 24;
  const p50s = groups.flatMap((g) => g.bars.map((b) => b.p50));
  // Whiskers may run far (a SYN retry, a GC): the axis follows the p50s and
  // cuts a longer whisker with an arrow.
  const max = niceMax(
    Math.min(
      Math.max(...groups.flatMap((g) => g.bars.map((b) => b.p90))),
      2 * Math.max(...p50s),
    ),
  );
  const x = (us: number) => left + Math.min(us, max) / max * plot;
  const out: string[] = [];
  let y = 56;
  out.push(
    `<text x="${
      width / 2
    }" y="26" text-anchor="middle" font-size="17" font-weight="bold">${
      escape(title)
    }</text>`,
  );
  for (const group of groups) {
    out.push(
      `<text x="12" y="${y + 4}" font-size="14" font-weight="bold">${
        escape(group.title)
      }</text>`,
    );
    y += 14;
    const top = y;
    for (const bar of group.bars) {
      const mid = y + rowHeight / 2;
      out.push(
        `<text x="${left - 8}" y="${
          mid + 4
        }" text-anchor="end" font-size="12">${escape(bar.label)}</text>`,
        `<rect x="${left}" y="${y + 4}" width="${
          (x(bar.p50) - left).toFixed(1)
        }" height="${rowHeight - 8}" fill="${bar.color}"/>`,
        `<line x1="${x(bar.p10).toFixed(1)}" x2="${
          x(bar.p90).toFixed(1)
        }" y1="${mid}" y2="${mid}" stroke="#222" stroke-width="1.2"/>`,
        `<line x1="${x(bar.p10).toFixed(1)}" x2="${
          x(bar.p10).toFixed(1)
        }" y1="${mid - 5}" y2="${mid + 5}" stroke="#222"/>`,
      );
      if (bar.p90 > max) {
        const end = left + plot;
        out.push(
          `<path d="M${end - 6},${mid - 5} L${end},${mid} L${end - 6},${
            mid + 5
          }" fill="none" stroke="#222"/>`,
        );
      } else {
        out.push(
          `<line x1="${x(bar.p90).toFixed(1)}" x2="${
            x(bar.p90).toFixed(1)
          }" y1="${mid - 5}" y2="${mid + 5}" stroke="#222"/>`,
        );
      }
      out.push(
        `<text x="${left + plot + 10}" y="${mid + 4}" font-size="12">${
          escape(
            `${bar.p50.toFixed(0)} µs  (p90 ${bar.p90.toFixed(0)})${
              bar.note ? "  " + bar.note : ""
            }`,
          )
        }</text>`,
      );
      y += rowHeight;
    }
    const base = x(group.baseline).toFixed(1);
    out.push(
      `<line x1="${base}" x2="${base}" y1="${top}" y2="${y}" stroke="#555" stroke-dasharray="4 3"/>`,
    );
    y += 18;
  }
  // The axis.
  out.push(
    `<line x1="${left}" x2="${
      left + plot
    }" y1="${y}" y2="${y}" stroke="#222"/>`,
  );
  for (let i = 0; i <= 5; i++) {
    const value = max * i / 5;
    const tick = x(value).toFixed(1);
    out.push(
      `<line x1="${tick}" x2="${tick}" y1="${y}" y2="${y + 5}" stroke="#222"/>`,
      `<text x="${tick}" y="${
        y + 18
      }" text-anchor="middle" font-size="11">${value}</text>`,
    );
  }
  out.push(
    `<text x="${left + plot / 2}" y="${
      y + 34
    }" text-anchor="middle" font-size="12">µs the caller waits</text>`,
  );
  y += 44;
  for (const line of caption.split("\n")) {
    out.push(
      `<text x="12" y="${y + 12}" font-size="11">${escape(line)}</text>`,
    );
    y += 15;
  }
  const height = y + 10;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...out,
    "</svg>",
    "",
  ].join("\n");
}
