/* Numbers, durations and times as the page shows them; pure functions. */

export function num(v, d = 0) {
  const n = Number(v);
  return Number.isFinite(n) ? n : d;
}

/** Not below 0, and 0 for what is not a number. */
export function pos(v) {
  return Math.max(0, num(v));
}

export function shortId(id) {
  const s = String(id || '');
  return s.length > 10 ? '…' + s.slice(-8) : s;
}

export function fmtRate(v) {
  if (!Number.isFinite(v) || v <= 0) return '0';
  if (v < 10) return v.toFixed(1);
  return String(Math.round(v));
}

export function fmtInt(v) {
  return Number.isFinite(v) ? String(Math.max(0, Math.round(v))) : '–';
}

/** A count in at most 6 characters, for a tile: 12345, then 123.5k, 1.235M, 12.35G. */
export function fmtCount(v) {
  if (!Number.isFinite(v)) return '–';
  v = Math.max(0, Math.round(v));
  if (v < 100000) return String(v);
  for (const [size, unit] of [[1e3, 'k'], [1e6, 'M'], [1e9, 'G'], [1e12, 'T']]) {
    const shown = Number((v / size).toPrecision(4));
    if (shown < 1000) return String(shown) + unit;
  }
  return v.toExponential(1);
}

export function fmtDur(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 0) ms = 0;
  if (ms < 1000) return Math.round(ms) + 'ms';
  const s = ms / 1000;
  if (s < 10) return s.toFixed(1) + 's';
  if (s < 60) return Math.floor(s) + 's';
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${String(Math.floor(s % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function fmtClock(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDateTime(ms) {
  if (!Number.isFinite(ms)) return '–';
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** `ms` relative to `now`: "in 5s" or "5s ago". */
export function relTime(ms, now) {
  if (ms == null) return '–';
  const d = ms - now;
  return d >= 0 ? 'in ' + fmtDur(d) : fmtDur(-d) + ' ago';
}

/** ISO-8601 string or epoch seconds -> epoch ms (or null). */
export function parseTime(v) {
  if (v === null || v === undefined || v === '') return null;
  if (typeof v === 'number') return Number.isFinite(v) ? v * 1000 : null;
  let s = String(v);
  // A naive ISO string from the API is UTC.
  if (/^\d{4}-\d{2}-\d{2}T[\d:.]+$/.test(s)) s += 'Z';
  const t = Date.parse(s);
  return Number.isFinite(t) ? t : null;
}

export function prettyJson(v) {
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}

/** A job's error as {type, message, traceback}, or null. */
export function normError(e) {
  if (e === null || e === undefined || e === '') return null;
  if (typeof e === 'string') return { type: 'Error', message: e, traceback: '' };
  if (typeof e === 'object') return e;
  return { type: 'Error', message: String(e), traceback: '' };
}
