// Live events: the team's events as they arrive, read from the SSE stream
// with fetch (EventSource cannot send the Authorization header).

import { ApiError, api, isAbort, query, teamPath } from '../api.js';
import { field, h, replace } from '../dom.js';
import { clock } from '../format.js';

/** Rows kept; older ones drop off the bottom. */
const MAX_ROWS = 500;
const BACKOFF_MS = [1000, 2000, 5000, 10_000, 30_000];

export default {
  page: 'live',
  title: 'Live events',
  render(ctx) {
    /** Every event received, newest first; the table shows those matching the filter. */
    const received = [];
    const seenNames = new Set();

    const status = h('p', { class: 'live-status', dataset: { testid: 'live-status', state: 'connecting' }, role: 'status' });
    const filter = h('input', { name: 'event-filter', type: 'search', list: 'live-names', autocomplete: 'off', spellcheck: 'false' });
    const names = h('datalist', { id: 'live-names' });
    const tbody = h('tbody');
    const table = h(
      'table',
      { class: 'data live', dataset: { testid: 'live-events' } },
      h('caption', { class: 'visually-hidden', text: 'Most recent events, newest first' }),
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Time (UTC)', 'Event', 'User', 'Outcome', 'Trace'].map((t) => h('th', { scope: 'col', text: t })),
        ),
      ),
      tbody,
    );
    const count = h('p', { class: 'muted small', 'aria-live': 'off' });
    ctx.main.append(
      h(
        'div',
        { class: 'card toolbar' },
        field('Filter by event name', filter, 'Exact name; empty shows every event'),
        status,
      ),
      h('div', { class: 'card table-card' }, table, count),
      names,
    );

    const wanted = () => filter.value.trim();
    const matches = (e) => !wanted() || e.event === wanted();

    function row(e) {
      const outcome = e.outcome === 'accepted' ? 'accepted' : `${e.outcome.replace('_', '-')}: ${e.code ?? '?'}`;
      return h(
        'tr',
        { dataset: { eventId: e.event_id ?? '', outcome: e.outcome } },
        h('td', { class: 'mono', text: clock(e.received_at ?? e.timestamp ?? e.arrived) }),
        h('td', { text: e.event || '—' }),
        h('td', { class: 'mono', text: e.user_id ?? '—' }),
        h(
          'td',
          {},
          h('span', { class: `pill ${e.outcome}`, title: e.message ?? '', text: outcome }),
          e.message ? h('span', { class: 'visually-hidden', text: ` (${e.message})` }) : null,
        ),
        h('td', {}, e.trace_id ? traceLink(e.trace_id) : '—'),
      );
    }

    function updateCount() {
      count.textContent = `${tbody.rows.length.toLocaleString('en-US')} shown of the last ${received.length.toLocaleString('en-US')} received (at most ${MAX_ROWS}).`;
    }

    function add(e) {
      // A rejected event may have no time of its own: show when it arrived here.
      e.arrived = new Date();
      received.unshift(e);
      if (received.length > MAX_ROWS) received.pop();
      if (e.event && !seenNames.has(e.event)) {
        seenNames.add(e.event);
        names.append(h('option', { value: e.event }));
      }
      if (matches(e)) {
        tbody.prepend(row(e));
        while (tbody.rows.length > MAX_ROWS) tbody.lastElementChild.remove();
      }
      updateCount();
    }

    function redraw() {
      replace(tbody, received.filter(matches).map(row));
      updateCount();
    }

    function setStatus(state, text) {
      status.dataset.state = state;
      replace(status, h('span', { class: 'dot', 'aria-hidden': 'true' }), text);
    }

    // One stream at a time; a filter change or leaving the page aborts it.
    let stream = null;
    let retryTimer = null;
    let attempt = 0;
    let firstAnswer;
    const answered = new Promise((resolve) => {
      firstAnswer = resolve;
    });

    async function connect() {
      stream?.abort();
      clearTimeout(retryTimer);
      const controller = new AbortController();
      stream = controller;
      setStatus('connecting', 'Connecting…');
      try {
        const response = await api(`${teamPath(ctx.team)}/live${query({ event: wanted() })}`, { signal: controller.signal, stream: true });
        attempt = 0;
        setStatus('open', 'Live');
        firstAnswer();
        await readEvents(response.body, add);
        throw new ApiError(0, 'stream_closed', 'The live stream ended.');
      } catch (err) {
        firstAnswer();
        if (isAbort(err) || controller.signal.aborted) return;
        if (err instanceof ApiError && err.status === 401) return;
        // Errors with a status are shown; a dropped connection is just retried.
        if (err instanceof ApiError && err.status >= 400) ctx.showError(err);
        const wait = BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)];
        attempt += 1;
        setStatus('reconnecting', `Disconnected; reconnecting in ${wait / 1000} s`);
        retryTimer = setTimeout(connect, wait);
      }
    }

    let debounce = null;
    filter.addEventListener('input', () => {
      redraw();
      clearTimeout(debounce);
      debounce = setTimeout(connect, 400);
    });
    ctx.onLeave(() => {
      clearTimeout(debounce);
      clearTimeout(retryTimer);
      stream?.abort();
    });

    redraw();
    connect();
    return answered;
  },
};

/** The trace's link: its id shortened on screen, whole for screen readers. */
function traceLink(id) {
  return h(
    'a',
    { href: `#/traces/${id}`, class: 'mono' },
    id.slice(0, 8),
    h('span', { class: 'visually-hidden', text: id.slice(8) }),
    h('span', { 'aria-hidden': 'true', text: '…' }),
  );
}

/**
 * Reads a `text/event-stream` body until it ends, calling `onEvent` with the
 * parsed data of every `event` message. Comments (`: keep-alive`) and other
 * message types are skipped.
 */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // Messages end with a blank line; line ends may be \n, \r\n or \r.
    const messages = buffer.split(/\r\n\r\n|\n\n|\r\r/);
    buffer = messages.pop();
    for (const message of messages) {
      let type = 'message';
      const data = [];
      for (const line of message.split(/\r\n|\n|\r/)) {
        if (line === '' || line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const name = colon === -1 ? line : line.slice(0, colon);
        const val = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (name === 'event') type = val;
        else if (name === 'data') data.push(val);
      }
      if (type === 'event' && data.length) onEvent(JSON.parse(data.join('\n')));
    }
  }
}
