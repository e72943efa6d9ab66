// Statements: the date range the customer picks (whole days, UTC), the
// query the API takes (RFC 3339 moments, both included), and the file name
// the server gives the CSV. Pure functions, so they are unit-tested.

/** The longest range the server accepts (`to - from`), in days. */
export const RANGE_DAYS_MAX = 366;
const DAY_MS = 86_400_000;

export interface StatementRange {
  /** RFC 3339, included. */
  from: string;
  /** RFC 3339, included. */
  to: string;
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Milliseconds of `day` (YYYY-MM-DD) at 00:00 UTC, or null if no such day. */
export function dayStart(day: string): number | null {
  const m = DAY.exec(day);
  if (!m) return null;
  const t = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // Date.UTC rolls 2026-02-31 over to March: not a real day.
  return new Date(t).toISOString().slice(0, 10) === day ? t : null;
}

/**
 * The range from the start of `fromDay` to the end of `toDay` (UTC), or a
 * message saying what is wrong with the days.
 */
export function statementRange(fromDay: string, toDay: string): StatementRange | string {
  const from = dayStart(fromDay);
  const to = dayStart(toDay);
  if (from === null) return "Choose a valid start date.";
  if (to === null) return "Choose a valid end date.";
  if (to < from) return "The end date must not be before the start date.";
  // The range ends a microsecond before the next day: (to - from) + 1 day.
  if ((to - from) / DAY_MS + 1 > RANGE_DAYS_MAX) return `A statement covers at most ${RANGE_DAYS_MAX} days.`;
  return { from: `${fromDay}T00:00:00Z`, to: `${toDay}T23:59:59.999999Z` };
}

/** YYYY-MM-DD of a moment, in UTC. */
export function utcDay(t: Date): string {
  return t.toISOString().slice(0, 10);
}

/** The default range: the first of this month to today (UTC). */
export function defaultDays(now: Date): { fromDay: string; toDay: string } {
  const today = utcDay(now);
  return { fromDay: `${today.slice(0, 8)}01`, toDay: today };
}

/** The file name in a Content-Disposition header, else `fallback`. */
export function filenameFrom(disposition: string | null, fallback: string): string {
  const m = /filename="?([^";]+)"?/i.exec(disposition ?? "");
  const name = m?.[1]?.trim();
  // Only a plain name: never a path.
  return name && !/[/\\]/.test(name) ? name : fallback;
}

/** The statement file's name when the server does not give one. */
export function defaultFilename(account: string, fromDay: string, toDay: string): string {
  return `statement-${account}-${fromDay}-${toDay}.csv`;
}
