// `tail`'s reading: delivery outcomes as they are recorded, each once, and
// all of them however many arrive between two polls (page after page, a
// bounded number a poll; a poll that reaches the bound is resumed by the
// next where it stopped, without waiting).
import type { Admin, TailEvent } from "./_admin_queries.ts";

/** How far back each poll looks again for outcomes stamped when they
 * happen (delivered, dead): a transaction may commit a moment after its
 * timestamp. */
const OVERLAP = 5_000;
/** And for failed attempts, stamped at their start: an attempt may run up
 * to its timeout before it fails. Only jobs now waiting for a retry match. */
const RETRY_OVERLAP = 10 * 60_000;
/** Outcomes per query. */
export const PAGE_SIZE = 5_000;
/** Queries per poll. */
export const PAGES_PER_POLL = 10;

export interface FollowOptions {
  /** Start this many ms before the database's clock. */
  since: number;
  /** Milliseconds between polls that found everything there was. */
  interval: number;
  /** Ends following. */
  signal?: AbortSignal;
  /** Outcomes per query. @default {PAGE_SIZE} */
  pageSize?: number;
  /** Queries per poll. @default {PAGES_PER_POLL} */
  pagesPerPoll?: number;
}

/** One poll's reading: its windows, and where its last page ended. */
interface Reading {
  since: Date;
  retriesSince: Date;
  after?: TailEvent;
}

/**
 * Calls `onEvent` for each outcome recorded after the start, once each,
 * oldest first, until `signal` aborts; `ready` gets the start first.
 */
export async function follow(
  admin: Admin,
  options: FollowOptions,
  ready: (start: Date) => void,
  onEvent: (event: TailEvent) => void,
): Promise<void> {
  const { interval, signal } = options;
  const pageSize = options.pageSize ?? PAGE_SIZE;
  const pagesPerPoll = options.pagesPerPoll ?? PAGES_PER_POLL;
  const start = new Date((await admin.now()).getTime() - options.since);
  let cursor = start;
  const windows = (at: Date): Reading => ({
    since: new Date(at.getTime() - OVERLAP),
    retriesSince: new Date(at.getTime() - RETRY_OVERLAP),
  });
  const seen = new Map<string, number>();
  const key = (e: TailEvent) => `${e.jobId}:${e.attempt}:${e.type}`;
  /** Reads up to `pages` pages; where it stopped when there is more. */
  const read = async (
    reading: Reading,
    pages: number,
    take: (event: TailEvent) => boolean,
  ): Promise<Reading | undefined> => {
    for (let page = 0; page < pages; page++) {
      const events = await admin.events(reading.since, {
        limit: pageSize,
        retriesSince: reading.retriesSince,
        after: reading.after,
      });
      for (const e of events) if (!take(e)) return undefined;
      if (events.length < pageSize) return undefined;
      reading = { ...reading, after: events[events.length - 1] };
      if (signal?.aborted) return undefined;
    }
    return reading;
  };

  // Outcomes already there before the start are not news: read (page by
  // page, to the first one after it) and remembered.
  let before: Reading | undefined = windows(start);
  while (before !== undefined && !signal?.aborted) {
    before = await read(before, pagesPerPoll, (e) => {
      if (e.at > start) return false;
      seen.set(key(e), e.at.getTime());
      return true;
    });
  }
  ready(start);

  let resume: Reading | undefined;
  while (!signal?.aborted) {
    resume = await read(resume ?? windows(cursor), pagesPerPoll, (e) => {
      const k = key(e);
      if (seen.has(k)) return true;
      seen.set(k, e.at.getTime());
      if (e.at > cursor) cursor = e.at;
      onEvent(e);
      return true;
    });
    // Forget what the next polls cannot return again.
    for (const [k, at] of seen) {
      const keep = k.endsWith(":retry") ? RETRY_OVERLAP : OVERLAP;
      if (at < cursor.getTime() - 2 * keep) seen.delete(k);
    }
    if (resume === undefined) await sleep(interval, signal);
  }
}

/** Waits `ms`, or until `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
