// Hand-written SVG charts, each inside a <figure> with its caption, a range
// picker and a table of the same numbers (the table stays in the DOM; a
// toggle chooses which one is shown).

import { h, replace, uid } from './dom.js';
import { bucketLabel, num, parseLabel, short, utc } from './format.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/** Range presets; a chart offers the subset that its endpoint allows. */
const RANGES = {
  '1h': { text: 'Last hour', ms: HOUR },
  '6h': { text: 'Last 6 hours', ms: 6 * HOUR },
  '24h': { text: 'Last 24 hours', ms: DAY },
  '7d': { text: 'Last 7 days', ms: 7 * DAY },
  '14d': { text: 'Last 14 days', ms: 14 * DAY },
  '30d': { text: 'Last 30 days', ms: 30 * DAY },
  '90d': { text: 'Last 90 days', ms: 90 * DAY },
};

export const STEPS = { '5m': 5 * MINUTE, hour: HOUR, day: DAY };

/**
 * `[from, to)` for a preset ending now. By day, the range starts at a UTC
 * midnight so "last 30 days" is 30 whole buckets, today's included.
 */
export function rangeOf(key, byDay = false) {
  const to = new Date();
  let from = new Date(to.getTime() - RANGES[key].ms);
  if (byDay) from = new Date(Math.floor(to.getTime() / DAY) * DAY - RANGES[key].ms + DAY);
  return { from, to, params: { from: from.toISOString(), to: to.toISOString() } };
}

/**
 * A chart card. `ranges`: the preset keys offered (the first selected unless
 * `range` says otherwise); `onRange(key)` is called when the user picks one;
 * `placeholder` shows until the first data.
 * Answers `{el, range(), setRanges(keys), setNote(text), showLine(...), showBars(...)}`.
 */
export function chartFigure({ name, title, subtitle, ranges, range, onRange, placeholder = 'Loading…' }) {
  const captionId = uid('cap');
  const rangeSelect = h('select', { name: 'range', id: uid('range'), onchange: () => onRange?.(rangeSelect.value) });
  const body = h('div', { class: 'chart-body' }, h('p', { class: 'empty', text: placeholder }));
  const tableBody = h('tbody');
  const table = h(
    'table',
    { class: 'data', dataset: { table: name }, hidden: true },
    h('caption', { class: 'visually-hidden', text: `${title}: table view` }),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Label' }), h('th', { scope: 'col', class: 'num', text: 'Value' }))),
    tableBody,
  );
  const toggle = h('button', {
    type: 'button',
    class: 'button small ghost',
    'aria-pressed': 'false',
    text: 'Table view',
    onclick: () => {
      const showTable = toggle.getAttribute('aria-pressed') !== 'true';
      toggle.setAttribute('aria-pressed', String(showTable));
      table.hidden = !showTable;
      body.hidden = showTable;
    },
  });
  const note = h('p', { class: 'chart-note' });
  const el = h(
    'figure',
    { class: 'card chart', dataset: { chart: name }, 'aria-labelledby': captionId },
    h('figcaption', { id: captionId }, h('span', { class: 'chart-title', text: title }), subtitle ? h('span', { class: 'chart-subtitle', text: subtitle }) : null),
    h(
      'div',
      { class: 'chart-tools' },
      h('label', { for: rangeSelect.id, text: 'Range' }),
      rangeSelect,
      toggle,
    ),
    body,
    table,
    note,
  );

  function setRanges(keys, selected = keys[0]) {
    replace(rangeSelect, keys.map((k) => h('option', { value: k, selected: k === selected, text: RANGES[k].text })));
  }
  setRanges(ranges, range ?? ranges[0]);

  /** Table rows: `[{label, value, display}]`, label and value as the API gave them. */
  function fillTable(rows) {
    replace(
      tableBody,
      rows.map((r) =>
        h(
          'tr',
          { dataset: { label: r.label, value: String(r.value) } },
          h('th', { scope: 'row', text: r.display ?? r.label }),
          h('td', { class: 'num', text: num(r.value) }),
        ),
      ),
    );
  }

  return {
    el,
    range: () => rangeSelect.value,
    setRanges,
    setNote: (text) => {
      note.textContent = text ?? '';
    },
    /**
     * A time series. `points` as the API gave them; the chart fills missing
     * buckets of `[from, to)` with zero (no row means no events), the table
     * lists the API's points only.
     */
    showLine({ points, from, to, step, what }) {
      const byDay = step === DAY;
      fillTable(points.map((p) => ({ ...p, display: byDay ? p.label : `${p.label.slice(0, 16)} UTC` })));
      replace(body, points.length ? lineChart(fillBuckets(points, from, to, step), byDay, `${title}: ${what}`) : empty());
    },
    /** Categories as horizontal bars: `[{label, value, display?, tone?}]`. */
    showBars({ bars, what }) {
      fillTable(bars);
      replace(body, bars.length ? barChart(bars, `${title}: ${what}`) : empty());
    },
  };
}

const empty = () => h('p', { class: 'empty', text: 'No data in this range.' });

/** Every bucket of `[from, to)`, with the API's value or zero. */
function fillBuckets(points, from, to, step) {
  const byDay = step === DAY;
  const values = new Map(points.map((p) => [p.label, p.value]));
  const out = [];
  for (let t = Math.floor(from.getTime() / step) * step; t < to.getTime(); t += step) {
    const label = bucketLabel(new Date(t), byDay);
    out.push({ label, date: new Date(t), value: values.get(label) ?? 0 });
    values.delete(label);
  }
  // A label the grid missed (should not happen) is still plotted.
  for (const [label, value] of values) out.push({ label, date: parseLabel(label), value });
  return out.sort((a, b) => a.date - b.date);
}

/** A "nice" axis maximum and step for values up to `max`. */
function niceScale(max, ticks = 4) {
  if (max <= 0) return { top: ticks, step: 1 };
  const raw = max / ticks;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const whole = Math.max(1, step);
  return { top: Math.ceil(max / whole) * whole, step: whole };
}

// Drawing width; the SVG scales to its card.
const W = 640;

function lineChart(series, byDay, label) {
  const H = 220;
  const pad = { l: 56, r: 16, t: 12, b: 36 };
  const iw = W - pad.l - pad.r;
  const ih = H - pad.t - pad.b;
  const { top, step } = niceScale(Math.max(...series.map((p) => p.value)));
  const n = series.length;
  const x = (i) => pad.l + (n === 1 ? iw / 2 : (i * iw) / (n - 1));
  const y = (v) => pad.t + ih - (v / top) * ih;

  const grid = [];
  for (let v = 0; v <= top; v += step) {
    grid.push(h('line', { class: 'grid', x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v) }));
    grid.push(h('text', { class: 'tick', x: pad.l - 8, y: y(v) + 4, 'text-anchor': 'end', text: short(v) }));
  }
  const spanMs = n > 1 ? series[n - 1].date - series[0].date : 0;
  const xTicks = [];
  const every = Math.max(1, Math.ceil(n / 6));
  for (let i = 0; i < n; i += every) {
    xTicks.push(h('text', { class: 'tick', x: x(i), y: H - 12, 'text-anchor': 'middle', text: tickLabel(series[i].date, byDay, spanMs) }));
  }
  const line = series.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p.value).toFixed(1)}`).join('');
  const area = `${line}L${x(n - 1).toFixed(1)},${y(0)}L${x(0).toFixed(1)},${y(0)}Z`;

  const tooltip = h('div', { class: 'tooltip', hidden: true, 'aria-hidden': 'true' });
  const dot = h('circle', { class: 'dot', r: 4, visibility: 'hidden' });
  const slot = n > 1 ? iw / (n - 1) : iw;
  const hits = series.map((p, i) => {
    const text = `${byDay ? p.label : utc(p.date)}: ${num(p.value)}`;
    return h(
      'rect',
      {
        class: 'hit',
        x: x(i) - slot / 2,
        y: pad.t,
        width: slot,
        height: ih,
        onmouseenter: (e) => {
          dot.setAttribute('cx', x(i));
          dot.setAttribute('cy', y(p.value));
          dot.setAttribute('visibility', 'visible');
          showTooltip(tooltip, e, text);
        },
        onmouseleave: () => {
          tooltip.hidden = true;
          dot.setAttribute('visibility', 'hidden');
        },
      },
      h('title', { text }),
    );
  });
  const svg = h(
    'svg',
    { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label, preserveAspectRatio: 'xMidYMid meet' },
    grid,
    xTicks,
    h('path', { class: 'area', d: area }),
    h('path', { class: 'line', d: line }),
    dot,
    hits,
  );
  return h('div', { class: 'plot' }, svg, tooltip, h('p', { class: 'axis-note', text: 'Times in UTC' }));
}

function tickLabel(date, byDay, spanMs) {
  const iso = date.toISOString();
  if (byDay) return iso.slice(5, 10);
  if (spanMs > DAY) return `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
  return iso.slice(11, 16);
}

function barChart(bars, label) {
  const row = 30;
  const pad = { l: 200, r: 70, t: 8, b: 8 };
  const H = pad.t + pad.b + bars.length * row;
  const iw = W - pad.l - pad.r;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const tooltip = h('div', { class: 'tooltip', hidden: true, 'aria-hidden': 'true' });
  const rows = bars.map((b, i) => {
    const y = pad.t + i * row;
    const shown = b.display ?? b.label;
    const text = `${shown}: ${num(b.value)}`;
    return h(
      'g',
      {
        class: `bar ${b.tone ?? ''}`,
        onmouseenter: (e) => showTooltip(tooltip, e, text),
        onmouseleave: () => {
          tooltip.hidden = true;
        },
      },
      h('title', { text }),
      h('text', { class: 'bar-label', x: pad.l - 10, y: y + row / 2 + 4, 'text-anchor': 'end', text: shown.length > 26 ? `${shown.slice(0, 25)}…` : shown }),
      h('rect', { x: pad.l, y: y + 5, height: row - 10, width: Math.max(2, (b.value / max) * iw), rx: 3 }),
      h('text', { class: 'bar-value', x: pad.l + Math.max(2, (b.value / max) * iw) + 8, y: y + row / 2 + 4, text: num(b.value) }),
    );
  });
  const svg = h('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label }, rows);
  return h('div', { class: 'plot' }, svg, tooltip);
}

/** Places the tooltip next to the pointer, inside the chart. */
function showTooltip(tooltip, event, text) {
  const box = tooltip.parentElement.getBoundingClientRect();
  tooltip.textContent = text;
  tooltip.hidden = false;
  const left = Math.min(event.clientX - box.left + 12, box.width - tooltip.offsetWidth - 4);
  tooltip.style.left = `${Math.max(0, left)}px`;
  tooltip.style.top = `${Math.max(0, event.clientY - box.top - 36)}px`;
}
