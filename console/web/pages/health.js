// Pipeline health: freshness, consumer lag, the last hour's outcomes and the
// team's plugins. Refreshed every 10 seconds.

import { ApiError, adminPath, api, seg, teamPath } from '../api.js';
import { card, h, replace } from '../dom.js';
import { age, dec, num, utc } from '../format.js';

/** Above this age the newest event is flagged (the pipeline may be stuck). */
const STALE_SECONDS = 300;

export default {
  page: 'health',
  title: 'Pipeline health',
  async render(ctx) {
    const freshness = h('div', { class: 'stat', dataset: { testid: 'freshness' } });
    const lastHour = h('div', { class: 'stats' });
    const lag = h('div', { class: 'stack' });
    const plugins = h('div');
    const updated = h('p', { class: 'muted small', 'aria-live': 'off' });

    ctx.main.append(
      h('div', { class: 'grid two' }, card('Freshness', freshness), card('Last hour', lastHour)),
      card('Consumer lag', lag),
      card('Plugins', plugins),
      updated,
    );

    async function loadHealth() {
      const health = await api(`${teamPath(ctx.team)}/health`, { signal: ctx.signal });
      showFreshness(freshness, health.newest_event);
      replace(
        lastHour,
        stat('Accepted', health.last_hour.accepted, 'ok'),
        stat('Rejected', health.last_hour.rejected, health.last_hour.rejected ? 'danger' : ''),
        stat('Dead-lettered', health.last_hour.dead_lettered, health.last_hour.dead_lettered ? 'warn' : ''),
      );
      replace(lag, health.consumers.length ? health.consumers.map(lagTable) : h('p', { class: 'empty', text: 'No consumer group reported.' }));
    }

    async function loadPlugins() {
      try {
        const { plugins: list } = await api(adminPath(`/teams/${seg(ctx.team)}/plugins`), { signal: ctx.signal });
        replace(plugins, pluginTable(list));
      } catch (err) {
        // A gateway without plugins answers 404: that is a state, not a fault.
        if (err instanceof ApiError && err.status === 404) {
          replace(plugins, h('p', { class: 'muted', text: err.message }));
        } else throw err;
      }
    }

    async function load() {
      const results = await Promise.allSettled([loadHealth(), loadPlugins()]);
      for (const r of results) if (r.status === 'rejected') ctx.showError(r.reason);
      updated.textContent = `Updated ${utc(new Date())}; refreshes every 10 seconds.`;
    }
    await load();
    ctx.every(10_000, load);
  },
};

function showFreshness(el, newest) {
  if (!newest) {
    replace(el, h('p', { class: 'stat-value', text: 'No events yet' }));
    return;
  }
  const stale = newest.age_seconds > STALE_SECONDS;
  el.dataset.ageSeconds = String(newest.age_seconds);
  replace(
    el,
    h('p', { class: 'stat-label', text: 'Newest event received' }),
    h('p', { class: `stat-value ${stale ? 'danger' : 'ok'}` }, `${age(newest.age_seconds)} ago`),
    h('p', { class: 'muted small', text: utc(newest.received_at) }),
    stale ? h('p', { class: 'badge warn', text: `Older than ${STALE_SECONDS / 60} minutes` }) : null,
  );
}

function stat(label, value, tone) {
  return h('div', { class: 'stat' }, h('p', { class: 'stat-label', text: label }), h('p', { class: `stat-value ${tone}`, text: num(value) }));
}

function lagTable(group) {
  return h(
    'table',
    { class: 'data', dataset: { table: `lag-${group.group}` } },
    h('caption', {}, h('strong', { text: group.group }), ` on ${group.topic}: total lag `, h('strong', { text: num(group.lag) })),
    h(
      'thead',
      {},
      h('tr', {}, ['Partition', 'Committed', 'End', 'Lag'].map((t, i) => h('th', { scope: 'col', class: i ? 'num' : '', text: t }))),
    ),
    h(
      'tbody',
      {},
      group.partitions.map((p) =>
        h(
          'tr',
          { dataset: { partition: p.partition, lag: p.lag } },
          h('th', { scope: 'row', text: p.partition }),
          h('td', { class: 'num', text: num(p.committed) }),
          h('td', { class: 'num', text: num(p.end) }),
          h('td', { class: 'num', text: num(p.lag) }),
        ),
      ),
    ),
    h(
      'tfoot',
      {},
      h('tr', {}, h('th', { scope: 'row', text: 'Total' }), h('td'), h('td'), h('td', { class: 'num', text: num(group.lag) })),
    ),
  );
}

function pluginTable(list) {
  if (list.length === 0) return h('p', { class: 'empty', text: 'This team has no plugins.' });
  return h(
    'table',
    { class: 'data', dataset: { table: 'plugins' } },
    h('caption', { class: 'visually-hidden', text: 'Plugins and their calls on this gateway replica' }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        ['Plugin', 'Version', 'State', 'Calls', 'Failures', 'p99'].map((t, i) => h('th', { scope: 'col', class: i > 2 ? 'num' : '', text: t })),
      ),
    ),
    h(
      'tbody',
      {},
      list.map((p) =>
        h(
          'tr',
          { dataset: { plugin: p.name, state: p.state } },
          h('th', { scope: 'row', text: p.name }),
          h('td', { text: p.active_version ?? '—' }),
          h('td', {}, h('span', { class: `pill ${p.state}`, title: p.disabled?.reason ?? p.error ?? '', text: p.state }), p.disabled ? h('span', { class: 'muted small', text: ` ${p.disabled.reason}` }) : null),
          h('td', { class: 'num', text: num(p.stats?.calls ?? 0) }),
          h('td', { class: 'num', text: num(p.stats?.failures ?? 0) }),
          h('td', { class: 'num', text: p.stats?.p99_ms === null || p.stats?.p99_ms === undefined ? '—' : `${dec(p.stats.p99_ms)} ms` }),
        ),
      ),
    ),
  );
}
