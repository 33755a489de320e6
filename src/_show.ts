// How a bad value is quoted in an error message, shared by every entry
// point (private; no imports, so any module can take it without pulling in
// another product's code).

const CONTROLS = /[\x7F-\x9F]/g;
const escape = (c: string) => `\\u00${c.charCodeAt(0).toString(16)}`;

/** Quotes a value for an error message, showing control characters. A
 * string over 80 characters is cut to them: its start, or, given `around`
 * (the index the message names), the stretch around that index. */
export function show(value: unknown, around?: number): string {
  if (typeof value === "string") {
    const shown = value.length <= 80
      ? value
      : around === undefined || !(around >= 70)
      ? value.slice(0, 77) + "..."
      : around > value.length - 70
      ? "..." + value.slice(-77)
      : "..." + value.slice(around - 37, around + 37) + "...";
    // JSON escapes C0 controls only: DEL and C1 (U+0080–U+009F, CSI among
    // them) as well.
    return JSON.stringify(shown).replace(CONTROLS, escape);
  }
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "function") return "a function";
  if (value === null || typeof value !== "object") return String(value);
  return Object.prototype.toString.call(value).slice(8, -1);
}
