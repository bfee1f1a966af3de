// Event explorer: one event's counts at a chosen resolution, and a breakdown
// by one property's top values.

import { api, query, teamPath } from '../api.js';
import { chartFigure, rangeOf, STEPS } from '../charts.js';
import { field, h, select } from '../dom.js';

/** Ranges each resolution offers: few enough buckets to draw and to query. */
const RANGES_BY = { '5m': ['1h', '6h', '24h'], hour: ['24h', '7d'], day: ['7d', '30d', '90d'] };

export default {
  page: 'explorer',
  title: 'Event explorer',
  async render(ctx) {
    const base = teamPath(ctx.team);
    const get = (path, params) => api(`${base}${path}${query(params)}`, { signal: ctx.signal });

    const { names } = await get('/event-names', rangeOf('30d', true).params);
    const eventSelect = names.length
      ? select({ name: 'event' }, names, names[0])
      : select({ name: 'event', disabled: true }, [['', 'No events in the last 30 days']]);
    const granularity = select(
      { name: 'granularity' },
      [
        ['5m', '5 minutes'],
        ['hour', 'Hour'],
        ['day', 'Day'],
      ],
      'hour',
    );
    const counts = chartFigure({
      name: 'event-counts',
      title: 'Event count',
      subtitle: 'Accepted events of the chosen name per bucket (UTC)',
      ranges: RANGES_BY.hour,
      onRange: () => ctx.reload(loadCounts),
    });
    async function loadCounts() {
      if (!eventSelect.value) {
        counts.showLine({ points: [] });
        return;
      }
      const step = granularity.value;
      const r = rangeOf(counts.range(), step === 'day');
      const { points } = await get('/series/events', { ...r.params, granularity: step, event: eventSelect.value });
      counts.showLine({ points, from: r.from, to: r.to, step: STEPS[step], what: `${eventSelect.value} events per ${step}` });
    }
    eventSelect.addEventListener('change', () => ctx.reload(loadCounts));
    granularity.addEventListener('change', () => {
      // Only ranges that suit the resolution can be picked.
      counts.setRanges(RANGES_BY[granularity.value]);
      ctx.reload(loadCounts);
    });

    const property = h('input', {
      name: 'property',
      type: 'text',
      placeholder: 'plan',
      autocomplete: 'off',
      spellcheck: 'false',
    });
    const breakdown = chartFigure({
      name: 'breakdown',
      title: 'Breakdown by property',
      subtitle: 'Top values of one property of the chosen event (raw events)',
      ranges: ['1h', '24h', '7d'],
      range: '24h',
      placeholder: 'Enter a property name and choose Break down.',
      onRange: () => {
        if (property.value.trim()) ctx.reload(runBreakdown);
      },
    });
    async function runBreakdown() {
      ctx.clearError();
      if (!eventSelect.value) return;
      const r = rangeOf(breakdown.range());
      const name = property.value.trim();
      const { points } = await get('/breakdown', { ...r.params, event: eventSelect.value, property: name, limit: 10 });
      breakdown.showBars({ bars: points, what: `${eventSelect.value} events by ${name}` });
    }
    const runButton = h('button', { type: 'submit', class: 'button primary', dataset: { testid: 'breakdown-run' }, text: 'Break down' });
    const breakdownForm = h(
      'form',
      {
        class: 'inline-form',
        onsubmit: (e) => {
          e.preventDefault();
          ctx.reload(runBreakdown);
        },
      },
      field('Property', property, 'A property name, e.g. plan or $browser'),
      runButton,
    );

    ctx.main.append(
      h(
        'div',
        { class: 'card toolbar', role: 'group', 'aria-label': 'Event and resolution' },
        field('Event', eventSelect),
        field('Resolution', granularity),
      ),
      counts.el,
      h('section', { class: 'stack', 'aria-label': 'Breakdown' }, h('div', { class: 'card' }, breakdownForm), breakdown.el),
    );
    await loadCounts();
  },
};
