// Supabase's edge runtime global as its docs describe it
// (https://supabase.com/docs/guides/functions/background-tasks):
// `EdgeRuntime.waitUntil(promise)` keeps the function alive for `promise`.
// Preloaded by tests/platforms/supabase_test.ts; reports on stdout.
(globalThis as { EdgeRuntime?: unknown }).EdgeRuntime = {
  waitUntil(promise: Promise<unknown>): void {
    console.log("waitUntil: handed");
    promise.then(() => console.log("waitUntil: settled"));
  },
};
