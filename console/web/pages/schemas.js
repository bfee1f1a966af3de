// Schemas: the team's subjects (one per event name) with their versions and
// compatibility modes; a draft schema is checked, then registered.

import { ApiError, api, schemaPath, seg } from '../api.js';
import { card, field, h, headersWithActions, replace, select } from '../dom.js';

const MODES = ['BACKWARD', 'BACKWARD_TRANSITIVE', 'FORWARD', 'FORWARD_TRANSITIVE', 'FULL', 'FULL_TRANSITIVE', 'NONE'];

const EXAMPLE = `{
  "type": "object",
  "properties": {
    "plan": {"type": "string", "enum": ["free", "pro"]}
  },
  "required": ["plan"]
}`;

export default {
  page: 'schemas',
  title: 'Schemas',
  async render(ctx) {
    const call = (path, options = {}) => api(schemaPath(ctx.team, path), { signal: ctx.signal, ...options });

    // ---- team configuration ----
    const mode = select({ name: 'compatibility' }, MODES);
    const unregistered = select({ name: 'unregistered-events' }, [
      ['accept', 'accept: events without a schema pass'],
      ['reject', 'reject: events need a registered schema'],
    ]);
    const configForm = h(
      'form',
      {
        class: 'inline-form',
        dataset: { testid: 'schema-config' },
        onsubmit: ctx.guard(async (e) => {
          e.preventDefault();
          ctx.clearError();
          await call('/config', { method: 'PUT', json: { compatibility: mode.value, unregisteredEvents: unregistered.value } });
          await loadSubjects();
        }),
      },
      field('Team compatibility mode', mode, 'Subjects without a mode of their own use it'),
      field('Events without a schema', unregistered),
      h('button', { type: 'submit', class: 'button', text: 'Save' }),
    );

    // ---- subjects ----
    const subjects = h('div');
    const names = h('datalist', { id: 'schema-subjects' });

    // ---- draft ----
    const event = h('input', { name: 'event', type: 'text', required: true, list: 'schema-subjects', autocomplete: 'off', spellcheck: 'false' });
    const schema = h('textarea', { name: 'schema', rows: 14, class: 'mono', spellcheck: 'false', required: true, value: EXAMPLE });
    const verdict = h('div', { dataset: { testid: 'schema-verdict' }, 'aria-live': 'polite', hidden: true });
    const form = h(
      'form',
      { class: 'stack', dataset: { testid: 'schema-form' }, onsubmit: ctx.guard(check) },
      field('Event name (subject)', event),
      field('JSON Schema of the event’s properties', schema),
      h(
        'div',
        { class: 'form-actions' },
        h('button', { type: 'submit', class: 'button', dataset: { action: 'check' }, text: 'Check compatibility' }),
        h('button', { type: 'button', class: 'button primary', dataset: { action: 'register' }, text: 'Register', onclick: ctx.guard(register) }),
      ),
      verdict,
    );

    ctx.main.append(card('Team configuration', configForm), card(`Subjects of team ${ctx.team}`, subjects), card('Check or register a schema', form), names);

    const draft = () => ({ schema: schema.value, schemaType: 'JSON' });
    const subjectPath = () => `/subjects/${seg(event.value.trim())}`;

    function showVerdict(compatible, title, messages = []) {
      verdict.hidden = false;
      verdict.dataset.compatible = String(compatible);
      verdict.className = `notice ${compatible ? 'ok' : 'danger'}`;
      replace(verdict, h('p', {}, h('strong', { text: title })), messages.length ? h('ul', {}, messages.map((m) => h('li', { text: m }))) : null);
    }

    function startAction() {
      ctx.clearError();
      verdict.hidden = true;
      return form.reportValidity();
    }

    async function check(e) {
      e.preventDefault();
      if (!startAction()) return;
      const answer = await call(`/compatibility${subjectPath()}/versions`, { method: 'POST', json: draft() });
      showVerdict(
        answer.is_compatible,
        answer.is_compatible
          ? `Compatible under ${answer.compatibility}: registering it would succeed.`
          : `Not compatible under ${answer.compatibility}: registering it would be refused.`,
        answer.messages,
      );
    }

    async function register() {
      if (!startAction()) return;
      try {
        const answer = await call(`${subjectPath()}/versions`, { method: 'POST', json: draft() });
        showVerdict(true, `Registered: ${event.value.trim()} version ${answer.version}.`);
        await loadSubjects();
      } catch (err) {
        // Refused as incompatible: the reasons belong next to the draft.
        if (err instanceof ApiError && err.code === 'incompatible_schema') {
          showVerdict(false, err.message, err.body?.messages ?? []);
        }
        throw err;
      }
    }

    async function loadSubjects() {
      const [config, list] = await Promise.all([call('/config'), call('/subjects')]);
      mode.value = config.compatibilityLevel;
      unregistered.value = config.unregisteredEvents;
      replace(names, list.map((s) => h('option', { value: s })));
      if (list.length === 0) {
        replace(subjects, h('p', { class: 'empty', text: 'No schema registered yet: events of every name are checked against none.' }));
        return;
      }
      const rows = await Promise.all(
        list.map(async (subject) => {
          const [versions, cfg] = await Promise.all([call(`/subjects/${seg(subject)}/versions`), call(`/config/${seg(subject)}`)]);
          return { subject, versions, mode: cfg.compatibilityLevel };
        }),
      );
      replace(
        subjects,
        h(
          'table',
          { class: 'data', dataset: { testid: 'subjects' } },
          h('caption', { class: 'visually-hidden', text: 'Subjects, their versions and compatibility modes' }),
          h('thead', {}, h('tr', {}, headersWithActions(['Event (subject)', 'Versions', 'Compatibility']))),
          h(
            'tbody',
            {},
            rows.map((r) =>
              h(
                'tr',
                { dataset: { subject: r.subject } },
                h('th', { scope: 'row', text: r.subject }),
                h('td', { text: r.versions.join(', ') }),
                h('td', {}, h('span', { class: 'pill', text: r.mode })),
                h(
                  'td',
                  {},
                  h('button', {
                    type: 'button',
                    class: 'button small',
                    dataset: { action: 'edit' },
                    'aria-label': `Edit v${r.versions.at(-1)} of ${r.subject}`,
                    text: `Edit v${r.versions.at(-1)}`,
                    onclick: ctx.guard(() => edit(r.subject)),
                  }),
                ),
              ),
            ),
          ),
        ),
      );
    }

    /** Puts a subject's latest schema into the draft, to change it. */
    async function edit(subject) {
      ctx.clearError();
      const latest = await call(`/subjects/${seg(subject)}/versions/latest`);
      event.value = subject;
      schema.value = JSON.stringify(JSON.parse(latest.schema), null, 2);
      verdict.hidden = true;
      schema.focus();
    }

    await loadSubjects();
  },
};
