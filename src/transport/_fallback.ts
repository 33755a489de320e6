// `auto` before node:net has loaded (the first triggers on a Node without
// process.getBuiltinModule): the socket when it loads, else fetch.
import { ownBody, type PreparedRequest } from "../trigger/_request.ts";
import { rawSocketsLoad } from "./_runtime.ts";
import { type SendEvents, sendOverSocket } from "./_socket.ts";
import { sendOverFetch } from "./_fetch.ts";

/**
 * Sends over the socket once node:net has loaded, or over fetch (setting
 * `req.transport`) when it cannot be loaded. Nothing is connected before
 * that is known. Resolves and rejects as the transport it picked.
 */
export async function sendOverSocketOrFetch(
  req: PreparedRequest,
  signal: AbortSignal,
  events: SendEvents,
): Promise<number | undefined> {
  ownBody(req); // sent after a wait: the caller's bytes are copied now
  if (await rawSocketsLoad()) return sendOverSocket(req, signal, events);
  req.transport = "fetch";
  return sendOverFetch(req, signal, events);
}
