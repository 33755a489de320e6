// One failure, one code, whichever transport met it: the messages below are
// what Deno's sockets, Deno's fetch, Node's net and undici's fetch say.
import assert from "node:assert/strict";
import { networkCode } from "../../src/transport/_classify.ts";

const DNS = [
  "failed to lookup address information: Name or service not known",
  "error sending request for url (http://nowhere.invalid/): client error (Connect): dns error: failed to lookup address information: Name or service not known",
  "getaddrinfo ENOTFOUND nowhere.invalid",
  "getaddrinfo EAI_AGAIN example.test",
];
const CONNECT = [
  "Connection refused (os error 111)",
  "error sending request for url (http://127.0.0.1:9/): client error (Connect): tcp connect error: Connection refused (os error 111)",
  "connect ECONNREFUSED 127.0.0.1:9",
  "Network is unreachable (os error 101)",
  "proxy request failed, cannot connect to the specified address",
];
// A connection lost after it was open (the request may have been read):
// no CONNECT, which says "refused or unreachable" (found by hunt E, with
// workerd's fetch, which says "Network connection lost." for a refused port
// too: NETWORK there, as docs/platforms.md says).
const LOST = [
  "Network connection lost.",
  "connection closed before message completed",
  "error sending request for url (http://127.0.0.1:8000/): client error (SendRequest): connection closed before message completed",
  "Connection reset by peer (os error 104)",
];
const TLS = [
  "invalid peer certificate: UnknownIssuer",
  "error sending request for url (https://127.0.0.1:8443/): client error (Connect): invalid peer certificate: UnknownIssuer",
  "self-signed certificate",
  "Client network socket disconnected before secure TLS connection was established",
];

Deno.test("networkCode() gives one code per failure, from any runtime's wording", () => {
  for (const message of DNS) {
    assert.equal(networkCode(message), "DNS", message);
  }
  for (const message of CONNECT) {
    assert.equal(networkCode(message), "CONNECT", message);
  }
  for (const message of TLS) assert.equal(networkCode(message), "TLS", message);
  for (const message of LOST) {
    assert.equal(networkCode(message), undefined, message);
  }
  assert.equal(networkCode("something odd"), undefined);
  // A host name that looks like a cause is not one (found by review).
  const host = "ssl-api.nosuchhost.invalid";
  const dns =
    `error sending request for url (https://${host}/): client error (Connect): dns error: failed to lookup address information: Name or service not known`;
  assert.equal(networkCode(dns, host), "DNS");
  assert.equal(
    networkCode("connect ECONNREFUSED dns1.example:443", "dns1.example"),
    "CONNECT",
  );
});
