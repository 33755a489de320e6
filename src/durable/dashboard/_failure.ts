// What the dashboard's error page says about a failure (private): not the
// message. Drivers name where the database is in more ways than a pattern
// can follow (an unbracketed IPv6 address and port, a resolver's host name,
// a unix socket's path, a connection string, pg_hba.conf's `for host "…"`,
// a certificate's names), so the page shows none of it: the error's class
// and its codes only, and the whole error goes to the server's log.

/** A code as drivers and the outbox set them: `DATABASE`, `ECONNREFUSED`,
 * `EAI_AGAIN`, `ERR_TLS_CERT_ALTNAME_INVALID`, a SQLSTATE (`42P01`). Nothing
 * else (a code that could carry a host) is shown. */
const CODE = /^[0-9A-Z_]{2,40}$/;
/** A class name (`OutboxError`, `DatabaseError`, `TypeError`). */
const NAME = /^[A-Za-z_$][\w$]{0,40}$/;
/** How deep a chain of causes is read for codes. */
const MAX_CAUSES = 4;

/**
 * The sentence the error page shows for `error`: which class of error and
 * which codes (its own and its causes'), never its message; for a redrive
 * or discard (`verb`: "redriven", "discarded") that failed partway, how
 * many its batches before the failure did (`OutboxError#done`).
 */
export function failureText(error: unknown, verb?: string): string {
  const name = error instanceof Error && NAME.test(error.name)
    ? error.name
    : "Error";
  const codes: string[] = [];
  let current = error;
  for (let depth = 0; depth <= MAX_CAUSES; depth++) {
    if (typeof current !== "object" || current === null) break;
    const { code, cause } = current as { code?: unknown; cause?: unknown };
    if (typeof code === "string" && CODE.test(code) && !codes.includes(code)) {
      codes.push(code);
    }
    current = cause;
  }
  const what = codes.length === 0 ? name : `${name} ${codes.join(", ")}`;
  const done = (error as { done?: unknown } | null)?.done;
  const partly = verb !== undefined && Number.isSafeInteger(done) &&
      (done as number) > 0
    ? ` Before it failed, ${done} dead letters were ${verb}: they stay ${verb}; submit again for the rest.`
    : "";
  return `A database query failed, or the database could not be reached (${what}). The server's log has the details.${partly}`;
}
