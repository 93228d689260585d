import { getJson } from './api.js';
import { age, h, replace, when } from './dom.js';
import { tag, text, value } from './values.js';

let opener;

/** One row in full, in a panel that takes the focus; Close (or Escape) gives it back. */
export function showDetail(row, from) {
  opener = from;
  const panel = document.getElementById('detail') ?? h('section', { id: 'detail', 'aria-labelledby': 'detail-title', tabindex: '-1' });
  const close = h('button', { type: 'button', class: 'close' }, 'Close');
  close.addEventListener('click', () => hideDetail());
  const fields = [
    ['Id', row.id],
    ['When', when(row.occurredAt)],
    ['Recorded', when(row.recordedAt)],
    ['Action', row.action],
    ['Outcome', row.outcome],
    ['User', row.userId],
    ['Entity type', row.entityType],
    ['Entity id', row.entityId],
    ['Request id', row.requestId],
    ['IP', row.ip],
    ['User agent', row.userAgent],
    ...(row.erasedBy ? [['Erased by', `erasure ${row.erasedBy}`]] : []),
  ];
  const seal = h('dd', { id: 'detail-seal' }, 'checking…');
  replace(
    panel,
    h('h2', { id: 'detail-title' }, 'Audit row'),
    close,
    h('dl', {}, ...fields.flatMap(([name, v]) => [h('dt', {}, name), h('dd', {}, value(v, 0, row))]), h('dt', {}, 'Seal'), seal),
    h('h3', {}, 'Changes'),
    h('pre', { class: 'json' }, json(row.changes)),
    h('h3', {}, 'Metadata'),
    h('pre', { class: 'json' }, json(row.metadata)),
  );
  panel.addEventListener('keydown', (event) => event.key === 'Escape' && hideDetail());
  document.body.append(panel);
  panel.hidden = false;
  panel.focus();
  getJson(`/rows/${encodeURIComponent(row.id)}`)
    .then(({ items }) => {
      const same = items.find((item) => item.occurredAt === row.occurredAt) ?? items[0];
      const others = items.length - 1;
      replace(seal, sealText(same), others > 0 ? ` (${others} other row${others > 1 ? 's' : ''} with this id: planted)` : '');
    })
    .catch((error) => replace(seal, tag('unknown'), ` (${error.message})`));
}

/** A row's seal status (`GET <path>/rows/:id`) in words; no `seal` field means integrity is off. */
function sealText(found) {
  const seal = found?.seal;
  if (!found) return tag('row not found');
  if (!seal) return tag('integrity off');
  const by = seal.sealedAt
    ? `seal ${seal.seq}, ${when(seal.sealedAt)} (${age(Date.now() - Date.parse(seal.sealedAt))} ago)`
    : `seal ${seal.seq}`;
  switch (seal.state) {
    case 'sealed':
      return [h('strong', { class: 'seal seal-sealed' }, 'sealed'), ` by ${by}, unchanged since`];
    case 'unsealed':
      return h('strong', { class: 'seal seal-unsealed' }, 'not sealed yet');
    case 'altered':
      return [h('strong', { class: 'seal seal-bad' }, 'not authentic'), `: changed after ${by} sealed it`];
    case 'forged':
      return [h('strong', { class: 'seal seal-bad' }, 'not authentic'), ': ', text(String(seal.detail ?? 'forged'))];
    case 'unsealable':
      return [h('strong', { class: 'seal seal-bad' }, 'never sealed'), ': ', text(String(seal.detail ?? ''))];
    default:
      return tag('unknown');
  }
}

/** A JSON column laid out on lines, its line feeds kept (every other hidden character shown as its code). */
function json(v) {
  return v === null || v === undefined ? value(v) : text(JSON.stringify(v, null, 2), 0, true);
}

/** Hides the panel and returns the focus to the button that opened it (unless the view changes). */
export function hideDetail(refocus = true) {
  const panel = document.getElementById('detail');
  if (panel) panel.hidden = true;
  if (refocus) opener?.focus();
}
