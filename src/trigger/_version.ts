// Kept in step with deno.json's "version" (a test checks it).
export const VERSION = "0.1.0";
