import { getJson } from './api.js';
import { age, h, replace, when } from './dom.js';
import { tag, value } from './values.js';

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
  ];
  const seal = h('dd', { id: 'detail-seal' }, 'checking…');
  replace(
    panel,
    h('h2', { id: 'detail-title' }, 'Audit row'),
    close,
    h('dl', {}, ...fields.flatMap(([name, v]) => [h('dt', {}, name), h('dd', {}, value(v, 0))]), h('dt', {}, 'Seal'), seal),
    h('h3', {}, 'Changes'),
    h('pre', { class: 'json' }, value(pretty(row.changes), 0)),
    h('h3', {}, 'Metadata'),
    h('pre', { class: 'json' }, value(pretty(row.metadata), 0)),
  );
  panel.addEventListener('keydown', (event) => event.key === 'Escape' && hideDetail());
  document.body.append(panel);
  panel.hidden = false;
  panel.focus();
  getJson('/viewer/status')
    .then((status) => {
      const integrity = status.integrity;
      if (!integrity) return replace(seal, tag('integrity off'));
      const last = integrity.lastSealedAt;
      replace(
        seal,
        'sealing on; last seal ',
        last ? `${when(last)} (${age(Date.parse(status.now) - Date.parse(last))} ago)` : tag('none yet'),
        '; check this row with audit-verify',
      );
    })
    .catch(() => replace(seal, tag('unknown')));
}

function pretty(v) {
  return v === null || v === undefined ? v : JSON.stringify(v, null, 2);
}

/** Hides the panel and returns the focus to the button that opened it (unless the view changes). */
export function hideDetail(refocus = true) {
  const panel = document.getElementById('detail');
  if (panel) panel.hidden = true;
  if (refocus) opener?.focus();
}
