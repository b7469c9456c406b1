/**
 * Proleptic Gregorian calendar arithmetic on day numbers (days since 1970-01-01), done with
 * integers so that years 1 and 9999, negative instants and leap days never pass through a JS
 * `Date` (whose range and rounding we do not want in SQL text or cursors).
 *
 * Layer: plan (private to `src/plan/`).
 *
 * @module
 */

/** A civil date. `month` is 1..12, `day` 1..31. */
export interface CivilDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

/** Milliseconds in a day. */
export const MS_PER_DAY = 86_400_000;
/** Seconds in a day. */
export const SECONDS_PER_DAY = 86_400;

/**
 * Day number of a civil date (H. Hinnant's `days_from_civil`, exact for any year).
 *
 * @param date The civil date.
 * @returns Days since 1970-01-01 (negative before it).
 */
export function daysFromCivil(date: CivilDate): number {
  const y = date.month <= 2 ? date.year - 1 : date.year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const mp = (date.month + 9) % 12;
  const doy = Math.floor((153 * mp + 2) / 5) + date.day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/**
 * Civil date of a day number (H. Hinnant's `civil_from_days`).
 *
 * @param days Days since 1970-01-01.
 * @returns The civil date.
 */
export function civilFromDays(days: number): CivilDate {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) -
      Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return { year, month, day };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, "0");
}

/**
 * A year as chrono's `%Y` prints it: four zero-padded digits for 0..9999, otherwise an explicit
 * sign and at least four digits. Matching it keeps cursors comparable with the Rust tool's.
 */
export function formatYear(year: number): string {
  if (year >= 0 && year <= 9999) return pad(year, 4);
  return (year < 0 ? "-" : "+") + pad(Math.abs(year), 4);
}

/**
 * `YYYY-MM-DD` of a day number.
 *
 * @param days Days since 1970-01-01.
 * @returns The ISO date text.
 */
export function formatDay(days: number): string {
  const c = civilFromDays(days);
  return `${formatYear(c.year)}-${pad(c.month, 2)}-${pad(c.day, 2)}`;
}

/** `YYYY-MM` of a civil date. */
export function formatMonth(c: CivilDate): string {
  return `${formatYear(c.year)}-${pad(c.month, 2)}`;
}

/** Number of days in a month. */
export function daysInMonth(year: number, month: number): number {
  return daysFromCivil(
    month === 12 ? { year: year + 1, month: 1, day: 1 } : {
      year,
      month: month + 1,
      day: 1,
    },
  ) - daysFromCivil({ year, month, day: 1 });
}

const DATE_PREFIX = /^\s*([+-]?\d{4,6})-(\d{2})-(\d{2})(?:$|[\sT])/;

/**
 * Parses the date part of a database scalar such as `2023-01-05`, `2023-01-05 12:00:00+00` or
 * `2023-01-05T12:00:00` (min/max probes come back as text on every engine).
 *
 * @param text The scalar text.
 * @returns Its day number, or undefined when it does not start with a valid date.
 */
export function parseDay(text: string): number | undefined {
  const m = DATE_PREFIX.exec(text);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  return daysFromCivil({ year, month, day });
}
