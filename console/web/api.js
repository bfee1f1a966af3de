// The console API client: the key in sessionStorage, JSON in and out, and one
// error type for every failure so pages can show `code` and `message`.

const KEY = 'sluice.key';
const BASE = '/api/v1';

export const session = {
  key: () => sessionStorage.getItem(KEY),
  signIn: (key) => sessionStorage.setItem(KEY, key),
  signOut: () => sessionStorage.removeItem(KEY),
};

/** An API call that failed: HTTP status (0: unreachable), code, message. */
export class ApiError extends Error {
  constructor(status, code, message, body = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

let unauthorized = () => {};

/** Registers what happens on any 401: the app signs out. */
export function onUnauthorized(handler) {
  unauthorized = handler;
}

/** An aborted call (navigation, reconnect): never shown as an error. */
export const isAbort = (err) => err?.name === 'AbortError';

/**
 * Calls `BASE + path`. `json` is sent as JSON; `body` as is (with
 * `contentType`). Answers the parsed JSON (null for 204), or throws ApiError.
 * With `stream: true` answers the Response itself, for the live stream.
 */
export async function api(path, { method = 'GET', json, body, contentType, signal, stream } = {}) {
  const headers = { Authorization: `Bearer ${session.key() ?? ''}` };
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (contentType) {
    headers['Content-Type'] = contentType;
  }
  let response;
  try {
    response = await fetch(BASE + path, { method, headers, body, signal });
  } catch (err) {
    if (isAbort(err)) throw err;
    throw new ApiError(0, 'network_error', 'The console server cannot be reached.');
  }
  if (!response.ok) throw await failure(response);
  if (stream) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/**
 * The error of a failed response. The console answers
 * `{"error": {"code", "message"}}`; the gateway's schema registry, forwarded
 * unchanged, answers Confluent's `{"error_code", "message", "code"}`.
 */
async function failure(response) {
  let parsed = null;
  try {
    parsed = await response.json();
  } catch (err) {
    if (isAbort(err)) throw err;
    // Not JSON (a proxy's page): fall back to the status line.
  }
  const inner = parsed?.error && typeof parsed.error === 'object' ? parsed.error : parsed;
  const err = new ApiError(
    response.status,
    inner?.code ?? `http_${response.status}`,
    inner?.message ?? (response.statusText || `HTTP ${response.status}`),
    parsed,
  );
  if (response.status === 401) unauthorized(err);
  return err;
}

/** `?a=1&b=2` from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

/** A path segment, escaped (event names have spaces). */
export const seg = (s) => encodeURIComponent(s);

/** The team's console API base. */
export const teamPath = (team) => `/teams/${seg(team)}`;
/** The gateway admin API, through the console. */
export const adminPath = (rest) => `/gateway/admin/v1${rest}`;
/** The team's schema registry, through the console. */
export const schemaPath = (team, rest) => `/gateway/schemas/v1/teams/${seg(team)}${rest}`;
