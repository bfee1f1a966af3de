// Overview: events per 5 minutes (live), daily active users, top events and
// rejected events by reason.

import { api, query, teamPath } from '../api.js';
import { chartFigure, rangeOf, STEPS } from '../charts.js';
import { h } from '../dom.js';

export default {
  page: 'overview',
  title: 'Overview',
  async render(ctx) {
    const base = teamPath(ctx.team);
    const get = (path, params) => api(`${base}${path}${query(params)}`, { signal: ctx.signal });

    const events = chartFigure({
      name: 'events-5m',
      title: 'Events per 5 minutes',
      subtitle: 'Accepted events, by 5-minute window (UTC)',
      ranges: ['1h', '6h', '24h'],
      range: '24h',
      onRange: () => ctx.reload(loadEvents),
    });
    async function loadEvents() {
      const r = rangeOf(events.range());
      const { points } = await get('/series/events', { ...r.params, granularity: '5m' });
      events.showLine({ points, from: r.from, to: r.to, step: STEPS['5m'], what: 'events per 5-minute window' });
    }

    const dau = chartFigure({
      name: 'dau',
      title: 'Daily active users',
      subtitle: 'Distinct users per UTC day',
      ranges: ['7d', '14d', '30d'],
      range: '30d',
      onRange: () => ctx.reload(loadDau),
    });
    async function loadDau() {
      const r = rangeOf(dau.range(), true);
      const { points } = await get('/series/dau', r.params);
      dau.showLine({ points, from: r.from, to: r.to, step: STEPS.day, what: 'distinct users per day' });
    }

    const top = chartFigure({
      name: 'top-events',
      title: 'Top events',
      subtitle: 'The 10 most frequent event names',
      ranges: ['24h', '7d', '30d'],
      range: '7d',
      onRange: () => ctx.reload(loadTop),
    });
    async function loadTop() {
      const r = rangeOf(top.range(), top.range() !== '24h');
      const { points } = await get('/top-events', { ...r.params, limit: 10 });
      top.showBars({ bars: points, what: 'events per event name' });
    }

    const rejections = chartFigure({
      name: 'rejections',
      title: 'Rejected events by reason',
      subtitle: 'Refused (rejected) and kept for replay (dead-lettered), by reason code',
      ranges: ['1h', '24h', '7d'],
      range: '24h',
      onRange: () => ctx.reload(loadRejections),
    });
    async function loadRejections() {
      const r = rangeOf(rejections.range());
      const answer = await get('/rejections', r.params);
      const bars = [
        ...answer.rejected.map((p) => ({ label: `rejected:${p.label}`, display: `Rejected: ${p.label}`, value: p.value, tone: 'danger' })),
        ...answer.dead_lettered.map((p) => ({
          label: `dead_lettered:${p.label}`,
          display: `Dead-lettered: ${p.label}`,
          value: p.value,
          tone: 'warn',
        })),
      ];
      rejections.showBars({ bars, what: 'rejected and dead-lettered events per reason code' });
      rejections.setNote(
        answer.truncated
          ? 'Partial: part of this range is older than the console keeps, or still being read; the numbers may be low.'
          : '',
      );
    }

    ctx.main.append(h('div', { class: 'grid two' }, events.el, dau.el, top.el, rejections.el));

    // Each chart fails alone: one backend error must not blank the others.
    const results = await Promise.allSettled([loadEvents(), loadDau(), loadTop(), loadRejections()]);
    for (const r of results) if (r.status === 'rejected') ctx.showError(r.reason);

    // New 5-minute windows appear as the aggregator closes them.
    ctx.every(30_000, loadEvents);
  },
};
