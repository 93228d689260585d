import { h } from './dom.js';

// Characters that reorder or hide text (bidi overrides, zero-width, controls) are shown as their code.
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const HIDDEN = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
// The same but line feeds, for JSON laid out on lines (in JSON text a value's own line feeds are `\n`).
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const HIDDEN_BUT_LINES = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
/** Text longer than this is cut in lists, with a button that shows the rest. */
export const CLIP = 300;
const MARKERS = {
  '[REDACTED]': 'redacted',
  '[Erased]': 'erased',
  '[ERASED]': 'erased',
  '[Unreadable]': 'unreadable',
  '[Truncated]': 'truncated',
  '[Circular]': 'circular',
  '[MaxDepth]': 'too deep',
  '[Function]': 'function',
};

/** A tag such as `unknown`, `redacted`, `null`: a value that is not text, never shown as a blank. */
export function tag(text) {
  return h('span', { class: `tag tag-${text.replace(/\W+/g, '-')}` }, text);
}

/**
 * Text made inert and legible: hidden and reordering characters shown as `U+202E`, isolated from
 * its neighbours' direction, and clipped past `clip` characters with a button for the rest. With
 * `lines`, line feeds stay line feeds (for JSON laid out on lines, whose values' own are escaped).
 */
export function text(value, clip = CLIP, lines = false) {
  const full = String(value);
  const node = h('span', { class: 'text', dir: 'ltr' });
  const shown = clip && full.length > clip ? full.slice(0, clip) : full;
  fill(node, shown, lines);
  // Long text goes in a scrolling box, in a monospace font: a proportional one makes the browser
  // lay out a 60 KB word for tens of seconds.
  if (shown.length > CLIP) node.classList.add('long');
  if (shown.length < full.length) {
    const more = h('button', { type: 'button', class: 'more' }, `show all ${full.length.toLocaleString('en')} characters`);
    more.addEventListener('click', () => {
      node.classList.add('long');
      fill(node, full, lines);
    });
    node.append('…', ' ', more);
  }
  return node;
}

function fill(node, value, lines) {
  node.replaceChildren();
  let last = 0;
  for (const match of value.matchAll(lines ? HIDDEN_BUT_LINES : HIDDEN)) {
    if (match.index > last) node.append(value.slice(last, match.index));
    const code = match[0].codePointAt(0).toString(16).toUpperCase().padStart(4, '0');
    node.append(h('span', { class: 'ctl', title: 'hidden character' }, `U+${code}`));
    last = match.index + match[0].length;
  }
  if (last < value.length) node.append(value.slice(last));
}

/**
 * Any stored value as inert text: markers and empties as tags, objects as JSON text. `[ERASED]` is
 * the `erased` tag only in a row an erasure took (`row.erasedBy`); in any other row it is text that
 * was logged as it is.
 */
export function value(v, clip = CLIP, row = undefined) {
  if (v === undefined) return tag('absent');
  if (v === null) return tag('null');
  if (v === '') return tag('empty text');
  if (typeof v === 'string') return MARKERS[v] && (MARKERS[v] !== 'erased' || row?.erasedBy) ? tag(MARKERS[v]) : text(v, clip);
  if (typeof v === 'number' || typeof v === 'boolean') return h('span', { class: 'text' }, String(v));
  return text(JSON.stringify(v), clip);
}
