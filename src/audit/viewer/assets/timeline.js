import { getJson } from './api.js';
import { showDetail } from './detail.js';
import { h, replace, when } from './dom.js';
import { fail, PAGE_SIZE } from './list.js';
import { tag, text, value } from './values.js';

/** One entity's history, newest first, each change as old → new per field. */
export function timelineView(main, params) {
  const type = params.get('type') ?? '';
  const id = params.get('id') ?? '';
  const list = h('ol', { id: 'timeline', class: 'timeline', 'aria-label': 'Changes, newest first' });
  const more = h('button', { type: 'button', id: 'more' }, 'Load older');
  replace(main, h('h2', {}, 'Timeline of ', text(type, 80), ' ', text(id, 80)), list, more);
  if (!type || !id) return replace(list, h('li', {}, 'No entity given.'));
  let cursor;
  const load = async () => {
    more.disabled = true;
    const page = await getJson(`/entities/${encodeURIComponent(type)}/${encodeURIComponent(id)}`, { cursor, limit: String(PAGE_SIZE) });
    for (const row of page.items) list.append(eventOf(row, type, id));
    if (list.childElementCount === 0) list.append(h('li', {}, 'No rows for this entity.'));
    cursor = page.nextCursor ?? undefined;
    more.hidden = !cursor;
    more.disabled = false;
  };
  more.addEventListener('click', () => load().catch(fail));
  return load();
}

function eventOf(row, type, id) {
  const details = h(
    'button',
    { type: 'button', class: 'detail', 'aria-label': `Details of ${row.action}, ${when(row.occurredAt)}` },
    'Details',
  );
  details.addEventListener('click', () => showDetail(row, details));
  const changes = Array.isArray(row.changes?.entities) ? row.changes.entities : [];
  // This entity's own changes first; others of the same request after them.
  const mine = changes.filter((c) => c.type === type && String(c.id) === id);
  const shown = mine.length ? mine : changes;
  return h(
    'li',
    { class: row.outcome === 'failure' ? 'event failure' : 'event' },
    h(
      'h3',
      {},
      value(row.action, 80),
      ' ',
      h('span', { class: 'by' }, 'by ', value(row.userId ?? undefined, 80, row)),
      ' ',
      h('time', { datetime: row.occurredAt }, when(row.occurredAt)),
      ' ',
      value(row.outcome),
    ),
    ...shown.map((change) => changeOf(change, row)),
    shown.length ? null : h('p', {}, 'No field changes recorded.'),
    typeof row.changes?.entitiesOmitted === 'number'
      ? h('p', {}, `${row.changes.entitiesOmitted} further changes were left out of this row.`)
      : null,
    details,
  );
}

function changeOf(change, row) {
  const rows = [];
  if (change.fields && typeof change.fields === 'object') {
    for (const [field, pair] of Object.entries(change.fields)) {
      const [before, after] = Array.isArray(pair) ? pair : [undefined, undefined];
      rows.push(fieldRow(field, value(before, undefined, row), value(after, undefined, row)));
    }
  } else if (change.after && typeof change.after === 'object') {
    for (const [field, after] of Object.entries(change.after)) rows.push(fieldRow(field, tag('unknown'), value(after, undefined, row)));
  }
  const caption = h(
    'caption',
    {},
    value(change.op ?? 'change', 40),
    ' ',
    value(change.type, 80),
    ' ',
    value(change.id ?? undefined, 80),
    change.before === 'unknown' ? [' (', tag('unknown'), ' before-values)'] : null,
  );
  if (rows.length === 0) return h('p', { class: 'change' }, caption.textContent, ': no fields.');
  return h(
    'table',
    { class: 'change' },
    caption,
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, 'Old'), h('th', { scope: 'col' }, 'New'))),
    h('tbody', {}, rows),
  );
}

function fieldRow(field, before, after) {
  return h(
    'tr',
    {},
    h('th', { scope: 'row' }, text(field, 80)),
    h('td', { class: 'old' }, before),
    h('td', { class: 'new' }, h('span', { class: 'arrow', 'aria-label': 'changed to' }, '→ '), after),
  );
}
