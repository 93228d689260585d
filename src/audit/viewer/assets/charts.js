import { age, h, svg } from './dom.js';

const STATE_Y = { up: 0, 'half-open': 1, down: 2 };

/** Rows per hour over the last day, as bars; a table of the same numbers for screen readers. */
export function volumeChart(hours) {
  const max = Math.max(1, ...hours.map((b) => b.rows));
  const width = 480;
  const height = 120;
  const bar = width / hours.length;
  const total = hours.reduce((sum, b) => sum + b.rows, 0);
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height + 16}`,
    class: 'chart',
    role: 'img',
    'aria-label': `Audit rows per hour, last 24 hours: ${total} in all, at most ${max} in an hour`,
  });
  hours.forEach((b, i) => {
    const barHeight = Math.round((b.rows / max) * height);
    const rect = svg('rect', {
      x: i * bar + 1,
      y: height - barHeight,
      width: bar - 2,
      height: Math.max(barHeight, b.rows ? 1 : 0),
      class: 'bar',
    });
    rect.append(svg('title', {}, `${b.hour.slice(11, 16)} UTC: ${b.rows}`));
    chart.append(rect);
    if (i % 6 === 0) chart.append(svg('text', { x: i * bar, y: height + 13, class: 'axis' }, b.hour.slice(11, 16)));
  });
  return chart;
}

/** The state over the last hour (or since the process started, if later), as a band per state. */
export function stateChart(history, nowIso) {
  const now = Date.parse(nowIso);
  const start = Math.max(now - 3_600_000, Math.min(now - 5000, Date.parse(history[0]?.at ?? nowIso)));
  const span = now - start;
  const width = 480;
  const row = 16;
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${row * 3 + 16}`,
    class: 'chart',
    role: 'img',
    'aria-label': `State over the last hour: ${summary(history)}`,
  });
  for (const [state, y] of Object.entries(STATE_Y)) chart.append(svg('text', { x: 0, y: y * row + 12, class: 'axis' }, state));
  history.forEach((change, i) => {
    const from = Math.max(start, Date.parse(change.at));
    const to = i + 1 < history.length ? Date.parse(history[i + 1].at) : now;
    const x = 70 + ((from - start) / span) * (width - 70);
    const w = Math.max(1, ((to - from) / span) * (width - 70));
    chart.append(svg('rect', { x, y: (STATE_Y[change.state] ?? 0) * row + 2, width: w, height: row - 4, class: `state-${change.state}` }));
  });
  chart.append(
    svg('text', { x: 70, y: row * 3 + 13, class: 'axis' }, `−${age(span)}`),
    svg('text', { x: width - 28, y: row * 3 + 13, class: 'axis' }, 'now'),
  );
  return chart;
}

function summary(history) {
  if (history.length <= 1) return `${history[0]?.state ?? 'unknown'} throughout`;
  return history.map((c) => `${c.state} from ${c.at.slice(11, 19)} UTC`).join(', ');
}

/** A labelled figure. */
export function figure(title, chart) {
  return h('figure', {}, h('figcaption', {}, title), chart);
}
