// Traces: one request's spans as a waterfall, read from Jaeger through the
// console.

import { ApiError, api, seg, teamPath } from '../api.js';
import { card, field, h } from '../dom.js';
import { micros, utc } from '../format.js';

const TRACE_ID = /^[0-9a-f]{32}$/;

export default {
  page: 'traces',
  title: 'Traces',
  async render(ctx) {
    const input = h('input', {
      name: 'trace-id',
      type: 'text',
      value: ctx.param ?? '',
      required: true,
      maxlength: 32,
      autocomplete: 'off',
      spellcheck: 'false',
      class: 'mono wide',
    });
    const form = h(
      'form',
      {
        class: 'inline-form',
        // Checked here, so a bad id is explained in the page's alert.
        novalidate: true,
        onsubmit: (e) => {
          e.preventDefault();
          const id = input.value.trim().toLowerCase();
          if (!TRACE_ID.test(id)) {
            input.setAttribute('aria-invalid', 'true');
            ctx.showError(notATraceId(id));
            input.focus();
            return;
          }
          location.hash = `#/traces/${id}`;
        },
      },
      field('Trace id', input, '32 hexadecimal characters, e.g. from the live events page'),
      h('button', { type: 'submit', class: 'button primary', text: 'Show trace' }),
    );
    ctx.main.append(h('div', { class: 'card' }, form));

    if (!ctx.param) return;
    const id = ctx.param.toLowerCase();
    if (!TRACE_ID.test(id)) {
      ctx.showError(notATraceId(ctx.param));
      return;
    }
    const trace = await api(`${teamPath(ctx.team)}/traces/${seg(id)}`, { signal: ctx.signal });
    ctx.main.append(waterfall(trace));
  },
};

const notATraceId = (id) => new ApiError(0, 'invalid_trace_id', `\`${id}\` is not a trace id: a trace id is 32 hexadecimal characters.`);

/** Spans in tree order (children after their parent, by start), with depth. */
function ordered(spans) {
  const ids = new Set(spans.map((s) => s.span_id));
  const children = new Map();
  for (const s of spans) {
    // A span whose parent is not in the trace (not exported, or a remote
    // caller) is shown as a root.
    const parent = s.parent_id && ids.has(s.parent_id) ? s.parent_id : null;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(s);
  }
  for (const list of children.values()) list.sort((a, b) => a.start_us - b.start_us);
  const out = [];
  const visit = (parent, depth) => {
    for (const s of children.get(parent) ?? []) {
      out.push({ span: s, depth });
      visit(s.span_id, depth + 1);
    }
  };
  visit(null, 0);
  return out;
}

function waterfall(trace) {
  const spans = trace.spans ?? [];
  if (spans.length === 0) return card('Trace', h('p', { class: 'empty', text: 'This trace has no spans.' }));
  const start = Math.min(...spans.map((s) => s.start_us));
  const end = Math.max(...spans.map((s) => s.start_us + s.duration_us));
  const total = Math.max(1, end - start);
  const services = [...new Set(spans.map((s) => s.service))];

  const rows = ordered(spans).map(({ span, depth }, i) => {
    const detailsId = `span-details-${i}`;
    const left = ((span.start_us - start) / total) * 100;
    const width = Math.max(0.3, (span.duration_us / total) * 100);
    const details = h(
      'dl',
      { id: detailsId, class: 'span-details', hidden: true },
      [
        ['Span id', span.span_id],
        ['Parent', span.parent_id ?? '—'],
        ['Service', span.service],
        ['Starts at', `+${micros(span.start_us - start)}`],
        ['Duration', micros(span.duration_us)],
        ...Object.entries(span.attributes ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]),
      ].map(([k, v]) => h('div', {}, h('dt', { text: k }), h('dd', { class: 'mono', text: v }))),
    );
    const toggle = h(
      'button',
      {
        type: 'button',
        class: 'span-toggle',
        'aria-expanded': 'false',
        'aria-controls': detailsId,
        style: { paddingLeft: `${0.5 + depth * 1.25}rem` },
        onclick: () => {
          const open = toggle.getAttribute('aria-expanded') !== 'true';
          toggle.setAttribute('aria-expanded', String(open));
          details.hidden = !open;
        },
      },
      h('span', { class: 'span-name', text: span.name }),
      h('span', { class: `service s${services.indexOf(span.service) % 6}`, text: span.service }),
    );
    return h(
      'li',
      { class: 'span', dataset: { spanName: span.name } },
      h(
        'div',
        { class: 'span-row' },
        toggle,
        h(
          'div',
          { class: 'track', 'aria-hidden': 'true' },
          h('div', { class: `bar s${services.indexOf(span.service) % 6}`, style: { left: `${left}%`, width: `${width}%` } }),
        ),
        h('span', { class: 'duration mono', text: micros(span.duration_us) }),
      ),
      details,
    );
  });

  const ruler = [0, 0.25, 0.5, 0.75, 1].map((f) => h('span', { style: { left: `${f * 100}%` }, text: micros(Math.round(f * total)) }));
  return card(
    `Trace ${trace.trace_id}`,
    h(
      'p',
      { class: 'muted' },
      `${spans.length} spans across ${services.length} service${services.length === 1 ? '' : 's'}, ${micros(total)} in all, starting ${utc(new Date(start / 1000))}. Select a span for its attributes.`,
    ),
    h('div', { class: 'waterfall-head', 'aria-hidden': 'true' }, h('span', { text: 'Span' }), h('div', { class: 'ruler' }, ruler), h('span', { text: 'Duration' })),
    h('ol', { class: 'waterfall', dataset: { testid: 'waterfall' } }, rows),
  );
}
