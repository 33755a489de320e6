// Summarises a V8 .cpuprofile (from `deno run --cpu-prof`) by self time:
// the top functions, and totals per source (our src/, bench/, Deno's
// runtime ext:, (program)/(garbage collector)/(idle)).
//
//   deno run --allow-read bench/cpuprofile_top.ts <file.cpuprofile> [top=25] [iterations]
//
// With `iterations`, each line also shows µs per iteration.

interface Node {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topArg] = Deno.args;
const profile: Profile = JSON.parse(await Deno.readTextFile(file));
const top = Number(topArg ?? 25);
const iterations = Number(Deno.args[2] ?? 0);
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => {
  self.set(id, (self.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

function source(url: string, name: string): string {
  if (url === "") return name.startsWith("(") ? name : "(native)";
  if (url.includes("/src/")) return "our src/";
  if (url.includes("/bench/")) return "bench/";
  if (url.startsWith("ext:")) {
    return url.split("/")[0] + "/" + url.split("/")[1];
  }
  return url.replace(/^.*\//, "");
}

const functions = new Map<string, number>();
const sources = new Map<string, number>();
for (const [id, us] of self) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  const short = url.replace(/^file:\/\/.*\/(src|bench|mod)/, "$1");
  const key = `${functionName || "(anonymous)"}  ${short}${
    url ? ":" + (lineNumber + 1) : ""
  }`;
  functions.set(key, (functions.get(key) ?? 0) + us);
  const group = source(url, functionName);
  sources.set(group, (sources.get(group) ?? 0) + us);
}
const pct = (us: number) =>
  (us / total * 100).toFixed(1).padStart(5) + "%" +
  (iterations > 0 ? (us / iterations).toFixed(2).padStart(8) + " µs" : "");
console.log(`${(total / 1_000).toFixed(0)} ms sampled\n\nself time by source`);
for (const [name, us] of [...sources].sort((a, b) => b[1] - a[1])) {
  console.log(`${pct(us)}  ${name}`);
}
console.log(`\ntop ${top} functions by self time`);
for (
  const [name, us] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)
) {
  console.log(`${pct(us)}  ${name}`);
}
