// Drives the Sluice console in headless Chromium for tests/tests/console.rs:
// one scenario per run, one JSON object on stdout as its result, logs on
// stderr.
//
//   node tests/console/drive.js <scenario> <console-url> <key> [extra...]
//
// Node packages (playwright-core, axe-core) come from the SDK suite's
// install (tests/sdk/package.json, installed by scripts/sdk-setup); the
// caller points NODE_PATH at that node_modules, as for tests/sdk/*.js.
// The browser is Debian's chromium (CHROMIUM, default /usr/bin/chromium).
//
// Every scenario reports `console_errors`: console messages of type error,
// uncaught page errors and API answers with status >= 500. Every page
// visited is screenshotted to SLUICE_CONSOLE_SCREENSHOTS/<page>.png (when
// set) and checked with axe-core; serious and critical violations are
// reported as {id, impact, nodes}. The DOM read here is the console's test
// contract (data-testid, data-page, data-table, ... attributes), never its
// styling or wording.
//
// A failed scenario prints {"error": "...", "console_errors": [...]} and
// exits 1, after a screenshot `error-<scenario>.png`.
const fs = require('node:fs')
const path = require('node:path')
const readline = require('node:readline')
const crypto = require('node:crypto')
const { chromium } = require('playwright-core')

const axeSource = fs.readFileSync(
  path.join(path.dirname(require.resolve('axe-core/package.json')), 'axe.min.js'),
  'utf8',
)

const [scenario, consoleUrl, key, ...extra] = process.argv.slice(2)
const screenshots = process.env.SLUICE_CONSOLE_SCREENSHOTS || ''
// Generous: a debug build on two busy cores, ClickHouse queries included.
const LOAD_TIMEOUT = Number(process.env.SLUICE_CONSOLE_LOAD_TIMEOUT_MS || '30000')

// Nav address -> data-page of the page it renders.
const PAGES = [
  ['#/overview', 'overview'],
  ['#/explorer', 'explorer'],
  ['#/live', 'live'],
  ['#/traces', 'traces'],
  ['#/health', 'health'],
  ['#/admin/keys', 'keys'],
  ['#/admin/plugins', 'plugins'],
  ['#/admin/schemas', 'schemas'],
]

const log = (...args) => console.error('[drive]', ...args)
const base = consoleUrl ? consoleUrl.replace(/\/+$/, '') : ''

let browser
let page
const consoleErrors = []
// Every /api/v1 answer, in order: {url, method, status}.
const apiResponses = []

async function open() {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
  // bypassCSP: axe-core is injected as an inline script, which a strict
  // Content-Security-Policy of the console would (rightly) refuse.
  const context = await browser.newContext({ bypassCSP: true, viewport: { width: 1280, height: 900 } })
  page = await context.newPage()
  page.on('console', (message) => {
    log(`[page ${message.type()}] ${message.text()}`)
    if (message.type() === 'error') consoleErrors.push(`console: ${message.text()}`)
  })
  page.on('pageerror', (error) => {
    log(`[page error] ${error.message}`)
    consoleErrors.push(`pageerror: ${error.message}`)
  })
  page.on('response', (response) => {
    const url = response.url()
    if (url.includes('/api/v1/')) {
      apiResponses.push({ url, method: response.request().method(), status: response.status() })
    }
    if (response.status() >= 500) consoleErrors.push(`http ${response.status()}: ${response.request().method()} ${url}`)
  })
}

async function signIn() {
  await page.goto(`${base}/#key=${encodeURIComponent(key)}`)
  await page.waitForSelector('main[data-page]', { timeout: LOAD_TIMEOUT })
}

/// Opens the page at `hash` (by its nav link when there is one) and waits
/// until it says it loaded.
async function visit(hash, name) {
  const link = page.locator(`a[href="${hash}"]`).first()
  if ((await link.count()) > 0 && (await link.isVisible())) {
    await link.click()
  } else {
    await page.evaluate((h) => { window.location.hash = h }, hash)
  }
  await loaded(name)
}

async function loaded(name) {
  await page.waitForSelector(`main[data-page="${name}"][data-loaded="true"]`, { timeout: LOAD_TIMEOUT })
}

async function screenshot(name) {
  if (!screenshots) return
  fs.mkdirSync(screenshots, { recursive: true })
  await page.screenshot({ path: path.join(screenshots, `${name}.png`), fullPage: true })
}

async function axe() {
  const present = await page.evaluate(() => typeof window.axe !== 'undefined')
  if (!present) await page.addScriptTag({ content: axeSource })
  return page.evaluate(async () => {
    const results = await window.axe.run(document)
    const violations = results.violations
      .filter((v) => v.impact === 'serious' || v.impact === 'critical')
      .map((v) => ({
        id: v.id,
        impact: v.impact,
        nodes: v.nodes.map((n) => ({ target: n.target.join(' '), html: n.html.slice(0, 200) })),
      }))
    // How many rules passed: proof that axe looked at a real page.
    return { violations, passes: results.passes.length }
  })
}

/// Rows of `table[data-table=name]` as [{label, value}].
async function readTable(name) {
  return page.$$eval(`table[data-table="${name}"] tbody tr`, (rows) =>
    rows.map((row) => ({ label: row.getAttribute('data-label'), value: Number(row.getAttribute('data-value')) })),
  )
}

/// Waits until an /api/v1 answer matching `match` ((url, {method, status}) => bool) arrived
/// after index `since` of apiResponses, and returns it.
async function waitForApi(match, since = 0, timeout = LOAD_TIMEOUT) {
  const deadline = Date.now() + timeout
  for (;;) {
    const found = apiResponses.slice(since).reverse().find((r) => match(new URL(r.url), r))
    if (found) return found
    if (Date.now() > deadline) throw new Error(`no API answer matching ${match} within ${timeout} ms`)
    await page.waitForTimeout(50)
  }
}

/// The `from`/`to` of an answered API request, as given and in epoch ms.
function rangeOf(response) {
  const url = new URL(response.url)
  const from = url.searchParams.get('from')
  const to = url.searchParams.get('to')
  return { from, to, from_ms: from ? Date.parse(from) : null, to_ms: to ? Date.parse(to) : null, url: url.pathname + url.search }
}

/// Waits until table `name` shows exactly the points of `response` (the
/// page re-rendered after the answer), then reads it. A page that never
/// shows them is read as it is, so the caller's comparison says how it differs.
async function tableAfter(name, response) {
  const body = await page.evaluate(async ({ url, key }) => {
    const r = await fetch(url, { headers: { authorization: `Bearer ${key}` } })
    return r.json()
  }, { url: response.url, key })
  const points = Array.isArray(body.points) ? body.points : []
  try {
    await page.waitForFunction(
      ({ name, points }) => {
        const rows = [...document.querySelectorAll(`table[data-table="${name}"] tbody tr`)]
        const shown = rows.map((r) => `${r.getAttribute('data-label')}=${Number(r.getAttribute('data-value'))}`)
        const want = points.map((p) => `${p.label}=${Number(p.value)}`)
        return shown.join('\n') === want.join('\n')
      },
      { name, points },
      { timeout: 5000 },
    )
  } catch (err) {
    log(`table ${name} never showed the API's points ${JSON.stringify(points)}: ${err.message}`)
  }
  return readTable(name)
}

const scenarios = {
  async trace() {
    const [traceId] = extra
    if (!traceId) throw new Error('usage: trace <console-url> <key> <trace-id>')
    await signIn()
    await visit(`#/traces/${traceId}`, 'traces')
    await page.waitForSelector('[data-testid=waterfall] [data-span-name]', { timeout: LOAD_TIMEOUT })
    await screenshot('trace')
    const spans = await page.$$eval('[data-testid=waterfall] [data-span-name]', (els) =>
      els.map((e) => e.getAttribute('data-span-name')),
    )
    return { spans }
  },

  async pages() {
    await signIn()
    const pages = {}
    for (const [hash, name] of PAGES) {
      const before = consoleErrors.length
      await visit(hash, name)
      await screenshot(name)
      const { violations, passes } = await axe()
      pages[name] = { axe: violations, axe_passes: passes, errors: consoleErrors.slice(before) }
      log(`${name}: loaded, ${violations.length} serious/critical axe violations`)
    }
    return { pages }
  },

  async overview() {
    // Signing in opens the overview: its requests are made from the start.
    const since = apiResponses.length
    await signIn()
    await visit('#/overview', 'overview')
    await screenshot('overview')
    const charts = {}
    for (const name of ['events-5m', 'dau', 'top-events', 'rejections']) charts[name] = await readTable(name)
    // The ranges the page asked for, so the caller asks ClickHouse the same.
    const find = (pred) => apiResponses.slice(since).find((r) => pred(new URL(r.url)))
    const ranges = {}
    const series = find((u) => u.pathname.endsWith('/series/events') && u.searchParams.get('granularity') === '5m')
    if (series) ranges['events-5m'] = rangeOf(series)
    const dau = find((u) => u.pathname.endsWith('/series/dau'))
    if (dau) ranges.dau = rangeOf(dau)
    const top = find((u) => u.pathname.endsWith('/top-events'))
    if (top) ranges['top-events'] = rangeOf(top)
    const rejections = find((u) => u.pathname.endsWith('/rejections'))
    if (rejections) ranges.rejections = rangeOf(rejections)
    return { charts, ranges }
  },

  async explorer() {
    const [event, property] = extra
    if (!event || !property) throw new Error('usage: explorer <console-url> <key> <event> <property>')
    await signIn()
    await visit('#/explorer', 'explorer')
    const select = page.locator('select[name=event]')
    // The names arrive from /event-names; wait for ours among the options.
    await page.waitForFunction(
      (event) => [...document.querySelectorAll('select[name=event] option')].some((o) => o.value === event),
      event,
      { timeout: LOAD_TIMEOUT },
    )
    const counts = {}
    const ranges = {}
    const forEvent = (g) => (u) =>
      u.pathname.endsWith('/series/events') && u.searchParams.get('granularity') === g && u.searchParams.get('event') === event
    const granularity = page.locator('select[name=granularity]')
    for (const g of ['5m', 'hour', 'day']) {
      const since = apiResponses.length
      let changed = false
      if ((await select.inputValue()) !== event) {
        await select.selectOption(event)
        changed = true
      }
      if ((await granularity.inputValue()) !== g) {
        await granularity.selectOption(g)
        changed = true
      }
      // Matched by URL, so an answer for the previous choice cannot pass
      // for this one; unchanged controls mean the answer came earlier.
      let response = await waitForApi(forEvent(g), changed ? since : 0)
      // The widest range the page offers at this resolution, so the test's
      // events (hours back) are inside it.
      const range = page.locator('figure[data-chart=event-counts] select[name=range]')
      const widest = await range.evaluate((s) => (s.options.length ? s.options[s.options.length - 1].value : ''))
      if (widest && (await range.inputValue()) !== widest) {
        const before = apiResponses.length
        await range.selectOption(widest)
        response = await waitForApi(forEvent(g), before)
      }
      counts[g] = await tableAfter('event-counts', response)
      ranges[g] = rangeOf(response)
      await screenshot(`explorer-${g}`)
    }
    const since = apiResponses.length
    await page.fill('input[name=property]', property)
    await page.click('button[data-testid=breakdown-run]')
    const response = await waitForApi(
      (u) => u.pathname.endsWith('/breakdown') && u.searchParams.get('event') === event && u.searchParams.get('property') === property,
      since,
    )
    const breakdown = await tableAfter('breakdown', response)
    await screenshot('explorer-breakdown')
    return { counts, breakdown, ranges, breakdown_range: rangeOf(response), breakdown_status: response.status }
  },

  async live() {
    const [gateway, ingestKey, eventName] = extra
    if (!gateway || !ingestKey || !eventName) throw new Error('usage: live <console-url> <key> <gateway-url> <ingest-key> <event-name>')
    await signIn()
    await visit('#/live', 'live')
    await page.waitForSelector('[data-testid=live-status][data-state=open]', { timeout: LOAD_TIMEOUT })
    await screenshot('live')
    const send = async (event) => {
      const response = await fetch(`${gateway.replace(/\/+$/, '')}/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${ingestKey}` },
        body: JSON.stringify({ events: [event] }),
      })
      const body = await response.json()
      log(`gateway answered ${response.status}: ${JSON.stringify(body)}`)
      if (response.status !== 200) throw new Error(`the gateway answered ${response.status}: ${JSON.stringify(body)}`)
      return body.results[0]
    }
    const row = (id, outcome) => `table[data-testid=live-events] tbody tr[data-event-id="${id}"][data-outcome="${outcome}"]`

    const acceptedId = crypto.randomUUID()
    let start = Date.now()
    const accepted = await send({ event: eventName, user_id: 'live-user', event_id: acceptedId, timestamp: new Date().toISOString() })
    if (accepted.status !== 'accepted') throw new Error(`the accepted event was answered ${JSON.stringify(accepted)}`)
    await page.waitForSelector(row(acceptedId, 'accepted'), { timeout: 15000 })
    const acceptedMs = Date.now() - start

    // An event name of spaces only breaks the contract: rejected, with the
    // event as sent (its event_id included) in events.rejected.
    const rejectedId = crypto.randomUUID()
    start = Date.now()
    const rejected = await send({ event: '   ', user_id: 'live-user', event_id: rejectedId, timestamp: new Date().toISOString() })
    if (rejected.status !== 'rejected') throw new Error(`the rejected event was answered ${JSON.stringify(rejected)}`)
    await page.waitForSelector(row(rejectedId, 'rejected'), { timeout: 15000 })
    const rejectedMs = Date.now() - start
    await screenshot('live-events')
    return {
      accepted_ms: acceptedMs,
      rejected_ms: rejectedMs,
      accepted_id: acceptedId,
      rejected_id: rejectedId,
      rejected_code: rejected.code,
    }
  },

  async 'create-key'() {
    const [label] = extra
    if (!label) throw new Error('usage: create-key <console-url> <key> <label>')
    await signIn()
    await visit('#/admin/keys', 'keys')
    const form = page.locator('form[data-testid=create-key]')
    await form.locator('input[name=label]').fill(label)
    await form.locator('select[name=role]').selectOption('ingest')
    await submit(form)
    const secret = page.locator('[data-testid=new-key-secret]')
    await secret.waitFor({ timeout: LOAD_TIMEOUT })
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid=new-key-secret]')
      return el && (el.value || el.textContent || '').trim().length > 0
    }, null, { timeout: LOAD_TIMEOUT })
    const key = await secret.evaluate((el) => (el.value || el.textContent || '').trim())
    await screenshot('keys-created')
    return { key }
  },

  async 'revoke-key'() {
    const [keyId] = extra
    if (!keyId) throw new Error('usage: revoke-key <console-url> <key> <key-id>')
    await signIn()
    await visit('#/admin/keys', 'keys')
    let confirmed = ''
    page.on('dialog', async (dialog) => {
      confirmed = dialog.message()
      await dialog.accept()
    })
    const row = `table[data-testid=keys] tbody tr[data-key-id="${keyId}"]`
    await page.waitForSelector(row, { timeout: LOAD_TIMEOUT })
    await page.click(`${row} button[data-action=revoke]`)
    await page.waitForFunction(
      (row) => {
        const tr = document.querySelector(row)
        return !tr || tr.getAttribute('data-state') === 'revoked' || tr.getAttribute('data-revoked') === 'true' ||
          !tr.querySelector('button[data-action=revoke]')
      },
      row,
      { timeout: LOAD_TIMEOUT },
    )
    await screenshot('keys-revoked')
    return { ok: true, confirm: confirmed }
  },

  async 'upload-plugin'() {
    const [name, version, wasm, events, config] = extra
    if (!name || !version || !wasm) throw new Error('usage: upload-plugin <console-url> <key> <name> <version> <wasm> [events-json] [config-json]')
    await signIn()
    await visit('#/admin/plugins', 'plugins')
    const form = page.locator('form[data-testid=upload-plugin]')
    await form.locator('input[name=name]').fill(name)
    await form.locator('input[name=version]').fill(version)
    await form.locator('input[type=file][name=component]').setInputFiles(wasm)
    // Optional fields, when the form has them.
    const kind = form.locator('select[name=kind]')
    if ((await kind.count()) > 0) await kind.selectOption('validator')
    if (events) await fillIfPresent(form, '[name=events]', events)
    if (config) await fillIfPresent(form, '[name=config]', config)
    await submit(form)
    const row = `table[data-testid=plugins] tbody tr[data-plugin="${name}"]`
    try {
      await page.waitForSelector(`${row}[data-state=active]`, { timeout: Number(process.env.SLUICE_PLUGIN_ACTIVE_TIMEOUT_MS || '120000') })
    } catch (err) {
      const state = await page.$eval(row, (tr) => tr.getAttribute('data-state')).catch(() => null)
      await screenshot('plugins-upload')
      return { state, error: err.message }
    }
    await screenshot('plugins-upload')
    return { state: 'active' }
  },

  async 'register-schema'() {
    const [event, schemaPath] = extra
    if (!event || !schemaPath) throw new Error('usage: register-schema <console-url> <key> <event> <schema-json-path>')
    await signIn()
    await visit('#/admin/schemas', 'schemas')
    const form = page.locator('form[data-testid=schema-form]')
    await form.locator('input[name=event]').fill(event)
    await form.locator('textarea[name=schema]').fill(fs.readFileSync(schemaPath, 'utf8'))
    let since = apiResponses.length
    await form.locator('button[data-action=check]').click()
    await waitForApi((u) => u.pathname.includes('/gateway/schemas/v1/') && u.pathname.includes('/compatibility/'), since)
    const verdict = page.locator('[data-testid=schema-verdict][data-compatible]')
    await verdict.waitFor({ timeout: LOAD_TIMEOUT })
    const compatible = (await verdict.getAttribute('data-compatible')) === 'true'
    const verdictText = ((await verdict.textContent()) || '').trim()
    since = apiResponses.length
    await form.locator('button[data-action=register]').click()
    const answer = await waitForApi(
      (u, r) => r.method === 'POST' && u.pathname.includes('/gateway/schemas/v1/') && !u.pathname.includes('/compatibility/') && u.pathname.endsWith('/versions'),
      since,
    )
    await screenshot('schemas-registered')
    return { compatible, verdict_text: verdictText, registered: answer.status === 200, register_status: answer.status }
  },

  async 'cross-team'() {
    // texts: which of these the pages show (the caller passes an event name
    // of each team: its own must show, the other's must not).
    const [other, ...texts] = extra
    if (!other) throw new Error('usage: cross-team <console-url> <key> <other-team> [text...]')
    await signIn()
    await loadedAny()
    const to = new Date()
    const from = new Date(to.getTime() - 3600 * 1000)
    const range = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`
    const t = encodeURIComponent(other)
    const routes = {
      session: '/api/v1/session',
      'series-events': `/api/v1/teams/${t}/series/events?${range}&granularity=5m`,
      'series-dau': `/api/v1/teams/${t}/series/dau?${range}`,
      'top-events': `/api/v1/teams/${t}/top-events?${range}`,
      'event-names': `/api/v1/teams/${t}/event-names?${range}`,
      rejections: `/api/v1/teams/${t}/rejections?${range}`,
      breakdown: `/api/v1/teams/${t}/breakdown?${range}&event=x&property=y`,
      live: `/api/v1/teams/${t}/live`,
      health: `/api/v1/teams/${t}/health`,
      traces: `/api/v1/teams/${t}/traces/4bf92f3577b34da6a3ce929d0e0e4736`,
      'gateway-plugins': `/api/v1/gateway/admin/v1/teams/${t}/plugins`,
      'gateway-subjects': `/api/v1/gateway/schemas/v1/teams/${t}/subjects`,
      'gateway-keys': `/api/v1/gateway/admin/v1/keys?team_id=${t}`,
    }
    const answers = await page.evaluate(async ({ routes, key }) => {
      const out = {}
      for (const [name, route] of Object.entries(routes)) {
        const abort = new AbortController()
        const timer = setTimeout(() => abort.abort(), 5000)
        try {
          const response = await fetch(route, { headers: { authorization: `Bearer ${key}` }, signal: abort.signal })
          let code = null
          const type = response.headers.get('content-type') || ''
          if (type.includes('json')) {
            const body = await response.json().catch(() => null)
            code = body && body.error ? (body.error.code || body.error_code || null) : (body && body.error_code) || null
            out[name] = { status: response.status, code, body: name === 'session' ? body : undefined }
          } else {
            abort.abort()
            out[name] = { status: response.status, code, type }
          }
        } catch (err) {
          out[name] = { status: 0, code: null, error: String(err) }
        } finally {
          clearTimeout(timer)
        }
      }
      return out
    }, { routes, key })
    // The page itself: no team picker for a team key, and every request it
    // makes is for its own team.
    const since = apiResponses.length
    const seen = []
    for (const [hash, name] of PAGES) {
      await visit(hash, name)
      seen.push(await page.evaluate(() => document.body.innerText))
    }
    const teamPicker = await page.locator('select[name=team]').count()
    const teamsAsked = [...new Set(apiResponses.slice(since).map((r) => {
      const m = new URL(r.url).pathname.match(/\/teams\/([^/]+)/)
      return m ? decodeURIComponent(m[1]) : null
    }).filter(Boolean))]
    const text = seen.join('\n')
    return {
      routes: answers,
      team_picker: teamPicker,
      teams_requested: teamsAsked,
      pages_seen: seen.length,
      other_team_in_page: text.includes(other),
      texts_found: texts.filter((t) => text.includes(t)),
    }
  },

  async revoked() {
    const wait = extra.includes('--wait-stdin')
    if (wait) {
      await signIn()
      await visit('#/overview', 'overview')
      // The caller revokes the key now, then writes a line.
      log('ready')
      console.error('DRIVE-READY')
      await new Promise((resolve) => {
        const rl = readline.createInterface({ input: process.stdin })
        rl.once('line', () => { rl.close(); resolve() })
      })
      await page.evaluate(() => { window.location.hash = '#/overview' })
      await page.reload()
    } else {
      await page.goto(`${base}/#key=${encodeURIComponent(key)}`)
    }
    await page.waitForSelector('form[data-testid=sign-in]', { timeout: LOAD_TIMEOUT })
    await page.waitForFunction(() => {
      const el = document.querySelector('[data-testid=sign-in-error]')
      return el && el.textContent.trim().length > 0
    }, null, { timeout: LOAD_TIMEOUT })
    const message = (await page.textContent('[data-testid=sign-in-error]')).trim()
    const stored = await page.evaluate(() => JSON.stringify(sessionStorage))
    await screenshot('signed-out')
    return { message, key_still_stored: stored.includes(key) }
  },
}

async function submit(form) {
  const button = form.locator('button[type=submit], input[type=submit]').first()
  if ((await button.count()) > 0) await button.click()
  else await form.evaluate((f) => f.requestSubmit())
}

async function fillIfPresent(form, selector, value) {
  const field = form.locator(selector).first()
  if ((await field.count()) > 0) await field.fill(value)
  else log(`the form has no ${selector}; ${value} not set`)
}

async function loadedAny() {
  await page.waitForSelector('main[data-page][data-loaded="true"]', { timeout: LOAD_TIMEOUT })
}

async function main() {
  const run = scenarios[scenario]
  if (!run || !base || !key) {
    console.error(`usage: drive.js <${Object.keys(scenarios).join('|')}> <console-url> <key> [extra...]`)
    process.exit(2)
  }
  await open()
  let result
  try {
    result = await run()
  } catch (err) {
    log(err.stack || String(err))
    await screenshot(`error-${scenario}`).catch(() => {})
    process.stdout.write(JSON.stringify({ error: String(err.message || err), console_errors: consoleErrors }) + '\n')
    await browser.close().catch(() => {})
    process.exit(1)
  }
  await browser.close()
  process.stdout.write(JSON.stringify({ ...result, console_errors: consoleErrors }) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
