// Plugins: upload a component as a new version, list plugins with their state
// and statistics, and manage one: activate a version, roll back, configure
// events, failure policy, configuration, enable or disable, delete.

import { ApiError, adminPath, api, query, seg } from '../api.js';
import { card, field, h, headersWithActions, replace, select } from '../dom.js';
import { bytes, dec, num, utc } from '../format.js';

const POLICIES = [
  ['reject', 'reject: refuse the events (plugin_failed)'],
  ['pass', 'pass: let the events through unchanged'],
  ['dead_letter', 'dead_letter: keep them for replay'],
];
/** States that change by themselves: the list is polled while one shows. */
const PENDING = new Set(['compiling', 'loading']);

/** "a, b ,c" → ["a", "b", "c"]; event names may contain spaces, not commas. */
const eventList = (text) =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

export default {
  page: 'plugins',
  title: 'Plugins',
  async render(ctx) {
    const base = adminPath(`/teams/${seg(ctx.team)}/plugins`);
    const call = (path, options = {}) => api(`${base}${path}`, { signal: ctx.signal, ...options });
    let plugins = [];
    let selected = null;
    /** The state the detail card was drawn with: redrawn when it changes. */
    let detailState = null;

    // ---- upload ----
    const name = h('input', { name: 'name', type: 'text', required: true, maxlength: 64, pattern: '[A-Za-z0-9._+\\-]+', autocomplete: 'off' });
    const version = h('input', { name: 'version', type: 'text', required: true, maxlength: 32, pattern: '[A-Za-z0-9._+\\-]+', placeholder: '1.0.0', autocomplete: 'off' });
    const kind = select({ name: 'kind' }, [
      ['validator', 'validator: accepts or rejects events'],
      ['enricher', 'enricher: adds to or rewrites events'],
    ]);
    const file = h('input', { name: 'component', type: 'file', accept: '.wasm,application/wasm', required: true });
    const events = h('input', { name: 'events', type: 'text', placeholder: 'Signed Up, Purchase', autocomplete: 'off' });
    const policy = select({ name: 'policy' }, [['', 'unchanged (reject for a new plugin)'], ...POLICIES], '');
    const activate = h('input', { name: 'activate', type: 'checkbox', id: 'plugin-activate', checked: true });
    const uploaded = h('div', { 'aria-live': 'polite' });
    const uploadForm = h(
      'form',
      { class: 'form-grid', dataset: { testid: 'upload-plugin' }, onsubmit: ctx.guard(upload) },
      field('Plugin name', name, 'Letters, digits, - _ . +'),
      field('Version', version, 'Versions are immutable'),
      field('Kind', kind, 'Needed for the first upload of a plugin'),
      field('Component (.wasm)', file),
      field('Run on events', events, 'Comma-separated names; empty: every event'),
      field('Failure policy', policy),
      h('div', { class: 'field checkbox' }, activate, h('label', { for: activate.id, text: 'Activate this version now' })),
      h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button primary', text: 'Upload' })),
    );

    async function upload(e) {
      e.preventDefault();
      ctx.clearError();
      if (!uploadForm.reportValidity()) return;
      const pluginName = name.value.trim();
      const body = await file.files[0].arrayBuffer();
      const answer = await call(
        `/${seg(pluginName)}/versions/${seg(version.value.trim())}${query({ kind: kind.value, activate: String(activate.checked) })}`,
        { method: 'PUT', body, contentType: 'application/wasm' },
      );
      const change = {};
      if (events.value.trim()) change.events = eventList(events.value);
      if (policy.value) change.policy = policy.value;
      if (Object.keys(change).length) await call(`/${seg(pluginName)}`, { method: 'PATCH', json: change });
      replace(
        uploaded,
        h('p', { class: 'notice ok', role: 'status' }, `Uploaded ${pluginName} ${answer.versions.at(-1)?.version ?? ''} (${answer.kind}); state: ${answer.state}.`),
      );
      version.value = '';
      file.value = '';
      selected = pluginName;
      await load(true);
    }

    // ---- list ----
    const list = h('div');
    const detail = h('div');
    const refresh = h('button', { type: 'button', class: 'button small ghost', text: 'Refresh', onclick: () => ctx.reload(() => load(true)) });
    ctx.main.append(
      card('Upload a version', uploadForm, uploaded),
      card(`Plugins of team ${ctx.team}`, h('div', { class: 'card-actions' }, refresh), list),
      detail,
    );

    async function load(withDetail) {
      ({ plugins } = await call(''));
      plugins.sort((a, b) => a.order - b.order || a.name.localeCompare(b.name));
      replace(list, table());
      const chosen = plugins.find((p) => p.name === selected);
      if (!chosen) replace(detail);
      else if (withDetail || chosen.state !== detailState) showDetail(chosen);
    }

    function showDetail(p) {
      detailState = p.state;
      replace(detail, manage(p));
    }

    function table() {
      if (plugins.length === 0) return h('p', { class: 'empty', text: 'This team has no plugins yet.' });
      const heads = ['Plugin', 'Kind', 'Version', 'State', 'Policy', 'Events', 'Calls', 'Failures', 'p50 / p99', 'Actions'];
      return h(
        'table',
        { class: 'data', dataset: { testid: 'plugins' } },
        h('caption', { class: 'visually-hidden', text: 'Plugins, in chain order; statistics of this gateway replica' }),
        h('thead', {}, h('tr', {}, heads.map((t, i) => h('th', { scope: 'col', class: i >= 6 && i <= 8 ? 'num' : '' }, i === 9 ? h('span', { class: 'visually-hidden', text: t }) : t)))),
        h(
          'tbody',
          {},
          plugins.map((p) =>
            h(
              'tr',
              { dataset: { plugin: p.name, state: p.state }, class: p.name === selected ? 'selected' : '' },
              h('th', { scope: 'row', text: p.name }),
              h('td', { text: p.kind }),
              h('td', { class: 'mono', text: p.active_version ?? '—' }),
              h(
                'td',
                {},
                h('span', { class: `pill ${p.state}`, text: p.state }),
                p.error ? h('p', { class: 'small danger', text: p.error }) : null,
                p.disabled ? h('p', { class: 'small muted', text: p.disabled.reason }) : null,
              ),
              h('td', { text: p.policy }),
              h('td', { text: p.events?.length ? p.events.join(', ') : 'every event' }),
              h('td', { class: 'num', text: num(p.stats?.calls ?? 0) }),
              h('td', { class: 'num', text: num(p.stats?.failures ?? 0) }),
              h('td', { class: 'num', text: p.stats?.p50_ms == null ? '—' : `${dec(p.stats.p50_ms)} / ${dec(p.stats.p99_ms)} ms` }),
              h(
                'td',
                {},
                h('button', {
                  type: 'button',
                  class: 'button small',
                  dataset: { action: 'manage' },
                  'aria-label': `Manage ${p.name}`,
                  text: 'Manage',
                  onclick: () => {
                    selected = p.name;
                    replace(list, table());
                    showDetail(p);
                    detail.scrollIntoView({ block: 'nearest' });
                  },
                }),
              ),
            ),
          ),
        ),
      );
    }

    // ---- one plugin ----
    function manage(p) {
      const path = `/${seg(p.name)}`;
      const act = (fn) =>
        ctx.guard(async () => {
          ctx.clearError();
          await fn();
          await load(true);
        });

      const versions = h(
        'table',
        { class: 'data', dataset: { table: 'versions' } },
        h('caption', { class: 'visually-hidden', text: `Versions of ${p.name}, oldest first` }),
        h('thead', {}, h('tr', {}, headersWithActions(['Version', 'Uploaded', 'Size', 'WIT', 'SHA-256']))),
        h(
          'tbody',
          {},
          p.versions.map((v) =>
            h(
              'tr',
              { dataset: { version: v.version } },
              h('th', { scope: 'row', class: 'mono' }, v.version, v.version === p.active_version ? h('span', { class: 'pill active', text: 'active' }) : null),
              h('td', { text: utc(v.uploaded_at) }),
              h('td', { text: bytes(v.size) }),
              h('td', { text: v.wit_version || '—' }),
              h('td', { class: 'mono', title: v.sha256, text: `${v.sha256.slice(0, 12)}…` }),
              h(
                'td',
                {},
                h('button', {
                  type: 'button',
                  class: 'button small',
                  dataset: { action: 'activate' },
                  disabled: v.version === p.active_version && !p.disabled,
                  'aria-label': `Activate version ${v.version}`,
                  text: 'Activate',
                  onclick: act(() => call(path, { method: 'PATCH', json: { active_version: v.version } })),
                }),
              ),
            ),
          ),
        ),
      );

      const evts = h('input', { name: 'plugin-events', type: 'text', value: (p.events ?? []).join(', '), autocomplete: 'off' });
      const pol = select({ name: 'plugin-policy' }, POLICIES, p.policy);
      const config = h('textarea', { name: 'config', rows: 5, class: 'mono', spellcheck: 'false', value: prettyJson(p.config) });
      const order = h('input', { name: 'order', type: 'number', step: 1, value: String(p.order) });
      const enabled = h('input', { name: 'enabled', type: 'checkbox', id: `enabled-${p.name}`, checked: !p.disabled });
      const configure = h(
        'form',
        {
          class: 'form-grid',
          dataset: { testid: 'configure-plugin' },
          onsubmit: (e) => {
            e.preventDefault();
            let parsed;
            try {
              parsed = JSON.parse(config.value || '{}');
            } catch (err) {
              ctx.showError(new ApiError(0, 'invalid_config', `The configuration is not JSON: ${err.message}`));
              return;
            }
            act(() =>
              call(path, {
                method: 'PATCH',
                json: { events: eventList(evts.value), policy: pol.value, config: parsed, order: Number(order.value), enabled: enabled.checked },
              }),
            )();
          },
        },
        field('Run on events', evts, 'Comma-separated names; empty: every event'),
        field('Failure policy', pol),
        field('Order in the chain', order),
        field('Configuration (JSON object)', config),
        h('div', { class: 'field checkbox' }, enabled, h('label', { for: enabled.id, text: 'Enabled' })),
        h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'button primary', text: 'Save configuration' })),
      );

      const s = p.stats;
      return card(
        `Plugin ${p.name}`,
        h('p', { class: 'muted' }, `${p.kind}, state `, h('strong', { text: p.state }), p.disabled ? ` (disabled ${utc(p.disabled.at)}: ${p.disabled.reason})` : ''),
        s
          ? h(
              'dl',
              { class: 'stats' },
              [
                ['Calls', num(s.calls)],
                ['Events', num(s.events)],
                ['Rejects', num(s.rejects)],
                ['Failures', num(s.failures)],
                ['Consecutive failures', num(s.consecutive_failures)],
                ['p50', s.p50_ms == null ? '—' : `${dec(s.p50_ms)} ms`],
                ['p99', s.p99_ms == null ? '—' : `${dec(s.p99_ms)} ms`],
              ].map(([k, v]) => h('div', { class: 'stat' }, h('dt', { class: 'stat-label', text: k }), h('dd', { class: 'stat-value', text: v }))),
            )
          : h('p', { class: 'muted', text: 'No calls on this replica yet.' }),
        s?.last_error ? h('p', { class: 'notice danger' }, 'Last error: ', h('code', { text: s.last_error })) : null,
        h('h3', { text: 'Versions' }),
        versions,
        h(
          'div',
          { class: 'card-actions' },
          h('button', {
            type: 'button',
            class: 'button',
            dataset: { action: 'rollback' },
            disabled: !p.history?.length,
            text: p.history?.length ? `Roll back to ${p.history.at(-1)}` : 'Roll back (no earlier version)',
            onclick: act(() => call(`${path}/rollback`, { method: 'POST' })),
          }),
          h('button', {
            type: 'button',
            class: 'button danger',
            dataset: { action: 'delete' },
            text: 'Delete plugin',
            onclick: act(async () => {
              if (!window.confirm(`Delete plugin ${p.name} and all its versions?`)) return;
              await call(path, { method: 'DELETE' });
              selected = null;
            }),
          }),
        ),
        h('h3', { text: 'Configuration' }),
        configure,
      );
    }

    await load(false);
    // Compiling takes seconds: follow the state until it settles.
    ctx.every(3000, async () => {
      if (plugins.some((p) => PENDING.has(p.state))) await load(false);
    });
  },
};

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
