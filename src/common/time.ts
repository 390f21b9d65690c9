/** Timestamps as ROCK writes them: ISO 8601 with the offset of ROCK_TIME_ZONE. */

/** ROCK's default time zone. */
export const DEFAULT_TIME_ZONE = "Asia/Shanghai";

const formatters = new Map<string, Intl.DateTimeFormat>();

/**
 * `zone` when Intl knows it, else DEFAULT_TIME_ZONE (also for an empty or missing zone). The
 * first call costs about 15 ms (ICU's date formatting data), which a rocklet leaves until it
 * first logs.
 */
export function knownTimeZone(zone: string | undefined): string {
  if (!zone) return DEFAULT_TIME_ZONE;
  try {
    formatterFor(zone);
    return zone;
  } catch {
    return DEFAULT_TIME_ZONE;
  }
}

function formatterFor(timeZone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat("en-US", {
      timeZone,
      hourCycle: "h23",
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      second: "2-digit",
    });
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/**
 * Formats `date` as `2026-01-21T19:38:00+08:00` in `timeZone`; with `millis`, adds `.123`.
 * @throws {RangeError} when the time zone is unknown.
 */
export function isoInZone(date: Date, timeZone = DEFAULT_TIME_ZONE, millis = false): string {
  const parts: Record<string, string> = {};
  for (const part of formatterFor(timeZone).formatToParts(date)) parts[part.type] = part.value;
  const local = Date.UTC(
    Number(parts.year),
    Number(parts.month) - 1,
    Number(parts.day),
    Number(parts.hour),
    Number(parts.minute),
    Number(parts.second),
  );
  const offsetMinutes = Math.round((local - Math.floor(date.getTime() / 1000) * 1000) / 60000);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  const offset = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${
    String(abs % 60).padStart(2, "0")
  }`;
  const ms = millis ? `.${String(date.getMilliseconds()).padStart(3, "0")}` : "";
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${ms}${offset}`;
}
