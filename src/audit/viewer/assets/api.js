// Every call goes to the JSON API on this page's origin, with the browser's own credentials.

/** The API's root: this page is `<path>/ui`, the API `<path>`. */
export const API = new URL('..', document.baseURI).pathname.replace(/\/$/, '');

/** A URL of the API with the given query (empty values left out). */
export function apiUrl(route, params = {}) {
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) if (value) query.set(name, value);
  const text = query.toString();
  return `${API}${route}${text ? `?${text}` : ''}`;
}

/** The JSON of a GET, or an Error carrying the API's message. */
export async function getJson(route, params) {
  const response = await fetch(apiUrl(route, params), { credentials: 'same-origin', headers: { accept: 'application/json' } });
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const message = body && typeof body.message === 'string' ? body.message : response.statusText;
    throw new Error(`${response.status}: ${message}`);
  }
  return body;
}
