// The pages' one way to call kiroku: same-origin fetch with the session cookie, the
// session's CSRF token on every request that changes anything, JSON errors as exceptions
// that keep kiroku's error code and details.
let csrf = null;

/** The page's session (`GET /v1/session`), or null when there is none. */
export async function session() {
  const s = await call('GET', '/v1/session');
  if (!s.signed_in) return null;
  csrf = s.csrf;
  return s;
}

/** Calls the API; resolves with the JSON answer (null for 204), throws an ApiError. */
export async function call(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  const r = await fetch(path, {
    method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch (_) { json = null; }
  if (!r.ok) {
    const e = new Error((json && json.message) || r.statusText);
    e.status = r.status;
    e.code = json && json.error;
    e.body = json;
    throw e;
  }
  return json;
}

/** Signs in (recruiter or operator) and keeps the new session's CSRF token. */
export async function signIn(path, body) {
  const s = await call('POST', path, body);
  csrf = s.csrf;
  return s;
}

/** Clears an element and appends children made from [tag, attrs, ...children] arrays. */
export function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** Replaces an element's children. */
export function fill(target, ...children) {
  target.replaceChildren(...children.flat().filter(c => c !== null && c !== undefined));
}

/** mm:ss of a duration in milliseconds. */
export function mmss(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return String(Math.floor(s / 60)).padStart(2, '0') + ':' + String(s % 60).padStart(2, '0');
}
