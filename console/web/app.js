// The console's entry: sign-in, the team picker, hash routing and the page
// lifecycle. Each page module exports `{page, title, render(ctx)}`; `render`
// builds the page into `ctx.main` and resolves once its initial API calls
// are done, which is when `data-loaded` turns "true".

import { ApiError, api, isAbort, onUnauthorized, session } from './api.js';
import { h, replace, select } from './dom.js';
import overview from './pages/overview.js';
import explorer from './pages/explorer.js';
import live from './pages/live.js';
import traces from './pages/traces.js';
import health from './pages/health.js';
import keys from './pages/keys.js';
import plugins from './pages/plugins.js';
import schemas from './pages/schemas.js';

const ROUTES = {
  overview,
  explorer,
  live,
  traces,
  health,
  'admin/keys': keys,
  'admin/plugins': plugins,
  'admin/schemas': schemas,
};

const TEAM = 'sluice.team';

const $ = (selector) => document.querySelector(selector);
const errorBox = $('[data-testid=error]');

/** Who is signed in: `{operator, team, teams}` from GET /session. */
let who = null;
/** The page being shown: its abort controller and cleanups. */
let current = null;

// ---- errors ---------------------------------------------------------------

/** Shows an error in the page's alert; aborts and 401s are not shown there. */
function showError(err) {
  if (isAbort(err)) return;
  if (err instanceof ApiError && err.status === 401) return;
  const code = err instanceof ApiError ? err.code : 'unexpected_error';
  const status = err instanceof ApiError && err.status ? ` (HTTP ${err.status})` : '';
  replace(errorBox, h('strong', { class: 'code', text: code }), status, ': ', err.message || String(err));
  errorBox.hidden = false;
}

function clearError() {
  errorBox.hidden = true;
  errorBox.replaceChildren();
}

// A bug must still show something rather than leave a half-drawn page.
window.addEventListener('unhandledrejection', (e) => {
  e.preventDefault();
  showError(e.reason);
});

// ---- signing in and out ---------------------------------------------------

function showSignIn(message = '') {
  leavePage();
  who = null;
  $('#signed-in').hidden = true;
  $('#signed-out').hidden = false;
  $('[data-testid=sign-in-error]').textContent = message;
  $('#sign-in-key').focus();
}

onUnauthorized((err) => {
  // Parallel calls all fail: the first one's message is shown.
  if (!session.key()) return;
  session.signOut();
  showSignIn(`${err.message} (${err.code})`);
});

$('[data-testid=sign-in]').addEventListener('submit', async (e) => {
  e.preventDefault();
  const input = $('#sign-in-key');
  const key = input.value.trim();
  if (!key) {
    $('[data-testid=sign-in-error]').textContent = 'Enter a key.';
    return;
  }
  session.signIn(key);
  input.value = '';
  await start();
});

$('#sign-out').addEventListener('click', () => {
  session.signOut();
  sessionStorage.removeItem(TEAM);
  showSignIn();
});

/** Asks who the key belongs to, then shows the console. */
async function start() {
  $('[data-testid=sign-in-error]').textContent = '';
  try {
    who = await api('/session');
  } catch (err) {
    // A 401 already brought the form back with its message.
    if (!(err instanceof ApiError && err.status === 401)) {
      session.signOut();
      showSignIn(`${err.message} (${err.code})`);
    }
    return;
  }
  $('#signed-out').hidden = true;
  $('#signed-in').hidden = false;
  renderTeamArea();
  if (!ROUTES[routeOf(location.hash).route]) location.hash = '#/overview';
  else route();
}

/** The operator picks a team; a team admin sees their own. */
function renderTeamArea() {
  const area = $('#team-area');
  if (!who.operator) {
    replace(area, h('span', { class: 'muted', text: 'Team' }), ' ', h('strong', { text: who.team }));
    return;
  }
  const teams = who.teams ?? [];
  const saved = sessionStorage.getItem(TEAM);
  const chosen = teams.includes(saved) ? saved : teams[0];
  if (chosen) sessionStorage.setItem(TEAM, chosen);
  const picker = select({ name: 'team', id: 'team-picker', disabled: teams.length === 0 }, teams, chosen);
  picker.addEventListener('change', () => {
    sessionStorage.setItem(TEAM, picker.value);
    route();
  });
  replace(
    area,
    h('span', { class: 'badge', text: 'Operator' }),
    h('label', { for: 'team-picker', text: 'Team' }),
    picker,
  );
}

function currentTeam() {
  if (!who) return null;
  return who.operator ? sessionStorage.getItem(TEAM) : who.team;
}

// ---- routing --------------------------------------------------------------

/** `#/traces/abc` → `{route: "traces", param: "abc"}`. */
function routeOf(hash) {
  const path = hash.replace(/^#\/?/, '');
  if (path.startsWith('traces/')) return { route: 'traces', param: decodeURIComponent(path.slice(7)) };
  return { route: path, param: null };
}

function leavePage() {
  if (!current) return;
  current.controller.abort();
  for (const fn of current.cleanups) fn();
  current = null;
}

function route() {
  if (!who) return;
  const { route: name, param } = routeOf(location.hash);
  const page = ROUTES[name];
  if (!page) {
    location.hash = '#/overview';
    return;
  }
  leavePage();
  clearError();
  for (const a of document.querySelectorAll('.sidenav a')) {
    const target = a.getAttribute('href').slice(2);
    if (target === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }

  // A fresh <main> per visit: a late answer for the page just left lands in
  // a detached element instead of the new page.
  const main = h('main', { dataset: { page: page.page, loaded: 'false' }, 'aria-labelledby': 'page-title' });
  document.querySelector('main[data-page]').replaceWith(main);
  document.title = `${page.title} · Sluice console`;
  main.append(h('h1', { id: 'page-title', text: page.title }));

  const team = currentTeam();
  if (!team) {
    main.append(h('p', { class: 'empty', text: 'No team has sent events in the last 30 days, so there is no team to show.' }));
    main.dataset.loaded = 'true';
    return;
  }

  const controller = new AbortController();
  const state = { controller, cleanups: [] };
  current = state;

  // `data-loaded` is "true" only when no load is running: the initial one
  // and any the user started since (several may overlap).
  let running = 0;
  async function loading(fn) {
    running += 1;
    main.dataset.loaded = 'false';
    try {
      await fn();
    } catch (err) {
      showError(err);
    } finally {
      running -= 1;
      if (running === 0) main.dataset.loaded = 'true';
    }
  }

  const ctx = {
    main,
    team,
    param,
    signal: controller.signal,
    showError,
    clearError,
    /** Runs `fn` when the page is left. */
    onLeave: (fn) => state.cleanups.push(fn),
    /** Calls `fn` every `ms` while the page is shown; errors are shown. */
    every(ms, fn) {
      const timer = setInterval(guard(fn), ms);
      state.cleanups.push(() => clearInterval(timer));
    },
    /** A user-started reload: `data-loaded` is "false" until it is done. */
    reload: loading,
    guard,
  };
  loading(() => page.render(ctx));
}

/** Wraps an event handler: its errors are shown, never thrown. */
function guard(fn) {
  return async (...args) => {
    try {
      await fn(...args);
    } catch (err) {
      showError(err);
    }
  };
}

window.addEventListener('hashchange', () => {
  // `#key=…` typed into an open console signs in with that key.
  if (location.hash.startsWith('#key=')) {
    takeKeyFromUrl();
    start();
    return;
  }
  route();
});

/** `#key=<key>` signs in; the key leaves the address bar at once. */
function takeKeyFromUrl() {
  const key = decodeURIComponent(location.hash.slice(5));
  history.replaceState(null, '', `${location.pathname}${location.search}#/overview`);
  if (key) session.signIn(key);
}

if (location.hash.startsWith('#key=')) takeKeyFromUrl();
if (session.key()) start();
else showSignIn();
