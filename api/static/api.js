/* The zjobs API from the page: its URLs, the token, and `api()`, fetch with the errors of the
 * API ({"error": {"code", "message"}}) as ApiError. */

const params = new URLSearchParams(location.search);

/** The token of `?token=`, sent as a bearer header (and in the URLs EventSource opens). */
export const TOKEN = params.get('token') || '';

/** Where the API is: the page's own directory (the page may be /, or /static/index.html). */
const BASE = location.pathname.replace(/static\/[^/]*$/, '').replace(/[^/]*$/, '');

export function apiUrl(path) {
  return BASE + String(path).replace(/^\/+/, '');
}

/** `url` with `?token=`, for what cannot send a header (EventSource). */
export function withToken(url) {
  if (!TOKEN) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(TOKEN);
}

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The JSON answer of `path` (text with `raw`); ApiError when it is not a 2xx. */
export async function api(path, { method = 'GET', body, raw = false } = {}) {
  const headers = { Accept: raw ? 'text/plain, */*' : 'application/json' };
  if (TOKEN) headers.Authorization = 'Bearer ' + TOKEN;
  let payload;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(apiUrl(path), { method, headers, body: payload, cache: 'no-store' });
  } catch (err) {
    throw new ApiError('network error: ' + (err && err.message ? err.message : err), 0, 'network');
  }
  const text = await res.text();
  let data = text;
  if (text && (!raw || !res.ok)) {
    try { data = JSON.parse(text); } catch { data = text; }
  }
  if (!res.ok) {
    throw new ApiError(errorMessage(data, res), res.status, data && data.error && data.error.code);
  }
  return data;
}

function errorMessage(data, res) {
  if (data && typeof data === 'object') {
    const e = data.error;
    if (e && typeof e === 'object' && (e.message || e.code)) return String(e.message || e.code);
    if (typeof e === 'string') return e;
    if (data.detail) return typeof data.detail === 'string' ? data.detail : JSON.stringify(data.detail);
    if (data.message) return String(data.message);
  }
  if (typeof data === 'string' && data.trim() && data.length < 300) return data.trim();
  return `HTTP ${res.status} ${res.statusText || ''}`.trim();
}
