import { apiUrl, getJson } from './api.js';
import { showDetail } from './detail.js';
import { h, replace, viewHref, when } from './dom.js';
import { tag, value } from './values.js';

/** Rows per page of the list. */
export const PAGE_SIZE = 100;
/** Rows per body of the list: the unit layout skips once it is out of view. */
const BLOCK_ROWS = 25;
const FILTERS = [
  ['userId', 'User', 'text'],
  ['action', 'Action', 'text'],
  ['entityType', 'Entity type', 'text'],
  ['entityId', 'Entity id', 'text'],
  ['from', 'From (UTC date)', 'date'],
  ['to', 'To (UTC date, not included)', 'date'],
];

/** The filters of the page's URL. */
function filtersOf(params) {
  const filters = {};
  for (const [name] of FILTERS) filters[name] = params.get(name) ?? '';
  filters.outcome = params.get('outcome') ?? '';
  return filters;
}

/** The list: filters kept in the URL, keyset "load more", export of the same filter. */
export function listView(main, params, navigate) {
  const filters = filtersOf(params);
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' });
  for (const [name, label, type] of FILTERS) {
    form.append(
      h(
        'label',
        {},
        label,
        h('input', { name, type, value: filters[name], autocomplete: 'off', maxlength: type === 'text' ? 500 : undefined }),
      ),
    );
  }
  const outcome = h(
    'select',
    { name: 'outcome' },
    ...['', 'success', 'failure'].map((o) => h('option', { value: o, selected: o === filters.outcome }, o || 'any')),
  );
  form.append(h('label', {}, 'Outcome', outcome));
  form.append(
    h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Apply filters'), h('a', { href: viewHref({ view: 'list' }) }, 'Clear')),
  );
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = { view: 'list' };
    for (const [name, v] of new FormData(form)) if (typeof v === 'string' && v.trim()) next[name] = v.trim();
    navigate(viewHref(next));
  });

  const exports = h(
    'p',
    { class: 'exports' },
    'Export this filter: ',
    h('a', { id: 'export-ndjson', href: apiUrl('/export', { ...filters, format: 'ndjson' }), download: '' }, 'NDJSON'),
    ' · ',
    h('a', { id: 'export-csv', href: apiUrl('/export', { ...filters, format: 'csv' }), download: '' }, 'CSV'),
  );
  // Table roles stated outright: the list is laid out as blocks and grid rows (see viewer.css), which
  // would otherwise cost it its table semantics in some browsers.
  const table = h(
    'table',
    { id: 'trail', role: 'table', 'aria-labelledby': 'trail-caption' },
    h('caption', { id: 'trail-caption' }, 'Audit rows, newest first'),
    h(
      'thead',
      { role: 'rowgroup' },
      h(
        'tr',
        { role: 'row' },
        ...['When', 'User', 'Action', 'Entity', 'Outcome', 'Row'].map((c) => h('th', { scope: 'col', role: 'columnheader' }, c)),
      ),
    ),
  );
  const count = h('p', { id: 'count', 'aria-live': 'polite' });
  const more = h('button', { type: 'button', id: 'more' }, 'Load more');
  replace(main, h('h2', {}, 'Trail'), form, exports, h('div', { class: 'scroll' }, table), count, more);

  let cursor;
  let rows = 0;
  const load = async () => {
    more.disabled = true;
    performance.mark('audit-page-start');
    // `<path>/viewer/rows` is the search `<path>?…` under the page's folder, where a browser sends the
    // credentials it signed in with at once (at `<path>?…` it waits to be refused first: a round trip more).
    const page = await getJson('/viewer/rows', { ...filters, cursor, limit: String(PAGE_SIZE) });
    performance.measure('audit-page-fetch', { start: 'audit-page-start' });
    // A body per 25 rows: bodies out of view are skipped by layout (content-visibility), so a long
    // list, and a page of it partly on screen, cost what the screen shows.
    for (let i = 0; i < page.items.length; i += BLOCK_ROWS) {
      table.append(h('tbody', { class: 'page', role: 'rowgroup' }, page.items.slice(i, i + BLOCK_ROWS).map(rowOf)));
    }
    rows += page.items.length;
    cursor = page.nextCursor ?? undefined;
    count.textContent = rows === 0 ? 'No rows match.' : `${rows.toLocaleString('en')} rows shown${cursor ? '' : ', all that match'}.`;
    more.hidden = !cursor;
    more.disabled = false;
    // Measured once the frame that shows the page is rendered (style, layout, paint): a timer set in
    // the frame's animation callback runs after its rendering steps.
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    performance.measure('audit-page', { start: 'audit-page-start', detail: { rows: page.items.length } });
  };
  more.addEventListener('click', () => load().catch(fail));
  return load();
}

function rowOf(row) {
  const entity = row.entityType
    ? h(
        'a',
        { href: viewHref({ view: 'entity', type: row.entityType, id: row.entityId ?? '' }) },
        value(row.entityType, 60),
        ' ',
        value(row.entityId ?? undefined, 60),
      )
    : tag('none');
  const details = h(
    'button',
    { type: 'button', class: 'detail', 'aria-label': `Details of ${row.action}, ${when(row.occurredAt)}` },
    'Details',
  );
  details.addEventListener('click', () => showDetail(row, details));
  return h(
    'tr',
    { class: row.outcome === 'failure' ? 'failure' : undefined, role: 'row' },
    h('td', { role: 'cell' }, when(row.occurredAt)),
    h('td', { role: 'cell' }, value(row.userId ?? undefined, 80, row)),
    h('td', { role: 'cell' }, value(row.action, 80)),
    h('td', { role: 'cell' }, entity),
    h('td', { role: 'cell' }, value(row.outcome)),
    h('td', { role: 'cell' }, details),
  );
}

/** Shows an error in the page's alert line. */
export function fail(error) {
  const line = document.getElementById('error');
  line.textContent = error instanceof Error ? error.message : String(error);
  line.hidden = false;
}
