// Display formats. Every time is shown in UTC and says so.

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en-US', { maximumFractionDigits: 2 });
const compact = new Intl.NumberFormat('en-US', { notation: 'compact', maximumFractionDigits: 1 });

/** 12345 → "12,345". */
export const num = (n) => (n === null || n === undefined ? '—' : integer.format(n));
/** 1.234 → "1.23". */
export const dec = (n) => (n === null || n === undefined ? '—' : decimal.format(n));
/** 12345 → "12.3K", for axis ticks. */
export const short = (n) => compact.format(n);

const pad = (n) => String(n).padStart(2, '0');

/** A Date as the API's bucket label: `YYYY-MM-DD hh:mm:ss` (or the day alone). */
export function bucketLabel(date, byDay) {
  const day = `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
  if (byDay) return day;
  return `${day} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())}`;
}

/** The API's bucket label (UTC, no zone) back to a Date. */
export function parseLabel(label) {
  const iso = label.length === 10 ? `${label}T00:00:00Z` : `${label.replace(' ', 'T')}Z`;
  return new Date(iso);
}

/** "2026-12-07 10:05 UTC" from an RFC 3339 string or a Date. */
export function utc(value) {
  if (value === null || value === undefined) return '—';
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  return `${bucketLabel(d).slice(0, 16)} UTC`;
}

/** "10:05:03" (UTC) for the live table, where the column header says UTC. */
export function clock(value) {
  if (value === null || value === undefined) return '—';
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value ?? '—');
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** 4 → "4 s", 3700 → "1 h 1 min". */
export function age(seconds) {
  if (seconds === null || seconds === undefined) return '—';
  if (seconds < 60) return `${num(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
  return `${num(Math.floor(seconds / 86400))} d ${Math.floor((seconds % 86400) / 3600)} h`;
}

/** Microseconds as "812 µs", "3.4 ms" or "1.2 s". */
export function micros(us) {
  if (us < 1000) return `${num(us)} µs`;
  if (us < 1_000_000) return `${dec(us / 1000)} ms`;
  return `${dec(us / 1_000_000)} s`;
}

/** Bytes as "142 KiB". */
export function bytes(n) {
  if (n < 1024) return `${num(n)} B`;
  if (n < 1024 * 1024) return `${dec(n / 1024)} KiB`;
  return `${dec(n / 1024 / 1024)} MiB`;
}
