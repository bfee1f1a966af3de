// API keys: create (the secret is shown once), list, revoke.

import { adminPath, api, query, seg } from '../api.js';
import { card, field, h, replace, select } from '../dom.js';
import { utc } from '../format.js';

export default {
  page: 'keys',
  title: 'API keys',
  async render(ctx) {
    const label = h('input', { name: 'label', type: 'text', maxlength: 200, autocomplete: 'off', placeholder: 'iOS app' });
    const role = select(
      { name: 'role' },
      [
        ['ingest', 'ingest: send events'],
        ['admin', 'admin: manage the team'],
      ],
      'ingest',
    );
    const created = h('div', { 'aria-live': 'polite' });
    const form = h(
      'form',
      { class: 'inline-form', dataset: { testid: 'create-key' }, onsubmit: ctx.guard(create) },
      field('Label', label),
      field('Role', role),
      h('button', { type: 'submit', class: 'button primary', text: 'Create key' }),
    );
    const list = h('div');
    ctx.main.append(card('Create a key', form, created), card(`Keys of team ${ctx.team}`, list));

    async function load() {
      const { keys } = await api(adminPath(`/keys${query({ team_id: ctx.team })}`), { signal: ctx.signal });
      replace(list, keysTable(keys));
    }

    async function create(e) {
      e.preventDefault();
      ctx.clearError();
      const key = await api(adminPath('/keys'), {
        method: 'POST',
        json: { team_id: ctx.team, role: role.value, label: label.value.trim() },
        signal: ctx.signal,
      });
      label.value = '';
      // The list first: once the secret shows, its row is there too.
      await load();
      replace(created, secretPanel(key));
    }

    async function revoke(key) {
      const name = key.label ? `“${key.label}” (${key.key_id})` : key.key_id;
      if (!window.confirm(`Revoke key ${name}? Clients using it are refused within seconds. This cannot be undone.`)) return;
      ctx.clearError();
      await api(adminPath(`/keys/${seg(key.key_id)}`), { method: 'DELETE', signal: ctx.signal });
      await load();
    }

    function keysTable(keys) {
      if (keys.length === 0) return h('p', { class: 'empty', text: 'This team has no keys.' });
      const sorted = [...keys].sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      return h(
        'table',
        { class: 'data', dataset: { testid: 'keys' } },
        h('caption', { class: 'visually-hidden', text: 'API keys, newest first' }),
        h('thead', {}, h('tr', {}, ['Key id', 'Label', 'Role', 'Created', 'Status', 'Actions'].map((t) => h('th', { scope: 'col', text: t })))),
        h(
          'tbody',
          {},
          sorted.map((k) =>
            h(
              'tr',
              { dataset: { keyId: k.key_id, revoked: String(Boolean(k.revoked_at)) } },
              h('th', { scope: 'row', class: 'mono', text: k.key_id }),
              h('td', { text: k.label || '—' }),
              h('td', {}, h('span', { class: `pill ${k.role}`, text: k.role })),
              h('td', { text: utc(k.created_at) }),
              h('td', {}, k.revoked_at ? h('span', { class: 'pill revoked', text: `revoked ${utc(k.revoked_at)}` }) : h('span', { class: 'pill ok', text: 'active' })),
              h(
                'td',
                {},
                h('button', {
                  type: 'button',
                  class: 'button small danger',
                  dataset: { action: 'revoke' },
                  disabled: Boolean(k.revoked_at),
                  'aria-label': `Revoke key ${k.label || k.key_id}`,
                  text: 'Revoke',
                  onclick: ctx.guard(() => revoke(k)),
                }),
              ),
            ),
          ),
        ),
      );
    }

    await load();
  },
};

/** The new key, once: a copy button and a warning that it will not be shown again. */
function secretPanel(key) {
  const secret = h('code', { class: 'secret', dataset: { testid: 'new-key-secret' }, text: key.key });
  const copied = h('span', { class: 'muted small', role: 'status' });
  const copy = h('button', {
    type: 'button',
    class: 'button small',
    text: 'Copy',
    onclick: async () => {
      try {
        await navigator.clipboard.writeText(key.key);
        copied.textContent = 'Copied.';
      } catch {
        // No clipboard permission: select the text for a manual copy.
        getSelection().selectAllChildren(secret);
        copied.textContent = 'Selected: press Ctrl+C to copy.';
      }
    },
  });
  return h(
    'div',
    { class: 'notice warn' },
    h('p', {}, h('strong', { text: `New ${key.role} key ${key.key_id}${key.label ? ` (${key.label})` : ''}. ` }), 'Copy it now: it is shown only once and cannot be recovered.'),
    h('div', { class: 'secret-row' }, secret, copy, copied),
  );
}
