// Runs a bundled edge function in Vercel's edge-runtime (npm edge-runtime),
// with the request context Vercel installs on the global, and reports what
// was handed to its waitUntil. argv: node_modules dir, bundle path, URL.
const [modules, bundle, url] = process.argv.slice(2);
const { EdgeRuntime } = require(
  require.resolve("edge-runtime", { paths: [modules] }),
);
const fs = require("node:fs");

(async () => {
  const kept = [];
  const runtime = new EdgeRuntime({
    initialCode: fs.readFileSync(bundle, "utf8"),
    extend(context) {
      // What Vercel does for each request: @vercel/functions reads this.
      context[Symbol.for("@vercel/request-context")] = {
        get: () => ({ waitUntil: (promise) => kept.push(promise) }),
      };
      return context;
    },
  });
  const response = await runtime.dispatchFetch(url);
  const body = await response.text();
  const handed = kept.length;
  await Promise.all(kept);
  await response.waitUntil();
  console.log(JSON.stringify({ status: response.status, body, handed }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
