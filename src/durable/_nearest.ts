/** At most `count` of `names`, the nearest to `wanted` first (fewest edits:
 * a typo's intended name leads), ties in alphabetical order, then how many
 * more there are. For messages naming what a mistyped name could have
 * meant: alphabetically, a database with many schemas or queues listed the
 * first ten and left out the one meant. */
export function nearest(
  names: readonly string[],
  wanted: string,
  count = 10,
): string[] {
  const ranked = names.map((name) => ({ name, edits: edits(name, wanted) }))
    .sort((a, b) =>
      a.edits - b.edits || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
    );
  const shown = ranked.slice(0, count).map(({ name }) => JSON.stringify(name));
  if (ranked.length > count) shown.push(`${ranked.length - count} more`);
  return shown;
}

/** Levenshtein distance: insertions, deletions and substitutions that turn
 * `a` into `b` (names are short: two rows of `b.length + 1`). */
function edits(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        previous[j] + 1,
        current[j - 1] + 1,
        previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}
