import { getJson } from './api.js';
import { figure, stateChart, volumeChart } from './charts.js';
import { age, h, replace, when } from './dom.js';
import { tag } from './values.js';

/** How often the panel refreshes while it is shown. */
const REFRESH_MS = 2000;
let timer;

/** Whether auditing is healthy: the write path's state and counts, sealing, and two charts. */
export function statusView(main) {
  const state = h('p', { id: 'state', 'aria-live': 'polite' }, 'Loading…');
  const numbers = h('dl', { id: 'numbers', class: 'numbers' });
  const charts = h('div', { class: 'charts' });
  replace(main, h('h2', {}, 'Status'), state, numbers, charts);
  const refresh = async () => {
    const status = await getJson('/viewer/status');
    const s = status.status;
    replace(
      state,
      'State: ',
      h('strong', { class: `state state-${s.state}`, id: 'state-value' }, s.state),
      s.downSince ? ` since ${when(s.downSince)}` : '',
    );
    const integrity = status.integrity;
    const now = Date.parse(status.now);
    const rows = [
      ['Pending', s.pending],
      ['Buffered', s.buffered],
      ['Spooled', s.spooled ?? tag('no spool')],
      ['Quarantined', s.quarantined],
      ['Dropped', s.dropped],
      [
        'Last seal',
        integrity
          ? integrity.lastSealedAt
            ? `${when(integrity.lastSealedAt)}, ${age(now - Date.parse(integrity.lastSealedAt))} ago`
            : tag('none yet')
          : tag('integrity off'),
      ],
      ['Sealing lag', integrity ? age(integrity.lag) : tag('integrity off')],
      ['Last error', s.lastError ? `${s.lastError.code ?? ''} ${s.lastError.message ?? ''}`.trim() : tag('none')],
    ];
    replace(
      numbers,
      ...rows.map(([name, v]) =>
        h(
          'div',
          { class: name === 'Last error' ? 'wide' : undefined },
          h('dt', {}, name),
          h('dd', { 'data-name': name.toLowerCase().replace(/ /g, '-') }, v),
        ),
      ),
    );
    let volume;
    try {
      volume = volumeChart((await getJson('/viewer/volume')).hours);
    } catch (error) {
      volume = h('p', {}, 'Volume unavailable: ', error.message);
    }
    replace(
      charts,
      figure('Audit rows per hour, last 24 hours (UTC)', volume),
      figure('State, last hour (or since start)', stateChart(status.history, status.now)),
    );
  };
  clearInterval(timer);
  timer = setInterval(() => {
    if (!document.getElementById('numbers')) return clearInterval(timer);
    refresh().catch((error) => replace(state, 'State: ', tag('unknown'), ` (${error.message})`));
  }, REFRESH_MS);
  return refresh();
}
