// The measuring half of scripts/bench-console (docs/benchmarks.md, section
// "Console"): one mode per run, one JSON document written to --out, progress
// on stderr.
//
//   node bench/console/page-load.js api  --console URL --key TOKEN --team T \
//        --clickhouse URL --database DB [--rounds 200] [--warmup 10] --out F
//   node bench/console/page-load.js page --console URL --key TOKEN \
//        [--runs 10] --out F
//
// `api`: the overview's four API calls exactly as console/web/pages/overview.js
// makes them (same paths, parameters and ranges, computed from "now" each
// round as charts.js `rangeOf` does), first one after another, then the four
// at once as the page does. The baseline, in the same rounds: the same SQL
// the console builds (clickhouse/src/dashboard.rs) sent straight to
// ClickHouse's HTTP interface with the console's query limits, so
// console ÷ direct is the console's own overhead (HTTP, key check, JSON).
// `/rejections` is answered from the console's in-memory counts of the
// dead-letter topic, not ClickHouse: it has no direct twin and is reported
// apart.
//
// `page`: first page loads with a cold browser cache. Chromium (Debian's,
// CHROMIUM or /usr/bin/chromium) is launched once; each run gets a new
// browser context (its own empty cache and storage), opens
// `<console>/#key=<token>` and waits until the overview says its data is
// loaded (`main[data-page=overview][data-loaded="true"]`, set by app.js once
// the four calls have answered and the charts are drawn). The time is
// `performance.now()` at that DOM change, so it counts from the navigation's
// start; the bytes are what the network delivered (CDP encodedDataLength:
// headers and compressed bodies).
//
// Node packages (playwright-core) come from the SDK suite's install
// (scripts/sdk-setup); the caller points NODE_PATH at that node_modules.
'use strict'

const fs = require('node:fs')
const os = require('node:os')

const MINUTE = 60_000
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR
const WINDOW_MS = 5 * MINUTE

const log = (...args) => console.error('[bench-console]', ...args)

function options(argv) {
  const out = {}
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`bad argument ${argv[i]}`)
    out[argv[i].slice(2)] = argv[i + 1]
  }
  return out
}

// ---- statistics ------------------------------------------------------------

/** Nearest-rank percentile of ascending `sorted` (p in 0..100). */
function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]
}

function median(samples) {
  const s = [...samples].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

function summary(samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const round = (x) => (x === null ? null : Math.round(x * 100) / 100)
  return {
    n: sorted.length,
    p50_ms: round(percentile(sorted, 50)),
    p95_ms: round(percentile(sorted, 95)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted[sorted.length - 1] ?? null),
    mean_ms: round(sorted.reduce((a, b) => a + b, 0) / (sorted.length || 1)),
  }
}

// ---- the overview's calls, as the page makes them ---------------------------

/** charts.js `rangeOf`: `[from, to)` ending now; by day from a UTC midnight. */
function rangeOf(now, ms, byDay) {
  const to = new Date(now)
  let from = new Date(now - ms)
  if (byDay) from = new Date(Math.floor(now / DAY) * DAY - ms + DAY)
  return { from, to }
}

/** api.js `query`: URLSearchParams in the page's key order. */
function query(params) {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) q.set(k, v)
  return `?${q}`
}

// dashboard.rs: `YYYY-MM-DD hh:mm:ss` (UTC) and `YYYY-MM-DD`.
const datetime = (ms) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
const date = (ms) => new Date(ms).toISOString().slice(0, 10)
const lastDay = (toMs) => date(toMs - 1)
const quote = (s) => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`

/**
 * The overview's four calls for `now`: the console path and, for the three
 * ClickHouse-backed ones, the SQL the console sends for it
 * (`event_counts_sql`, `dau_sql`, `top_events_sql`).
 */
function overviewCalls(team, db, now) {
  const base = `/api/v1/teams/${encodeURIComponent(team)}`
  const t = quote(team)
  const ev = rangeOf(now, DAY, false) // events-5m: '24h'
  const dau = rangeOf(now, 30 * DAY, true) // dau: '30d'
  const top = rangeOf(now, 7 * DAY, true) // top-events: '7d'
  const rej = rangeOf(now, DAY, false) // rejections: '24h'
  const iso = (r) => ({ from: r.from.toISOString(), to: r.to.toISOString() })
  return [
    {
      name: 'series/events',
      path: `${base}/series/events${query({ ...iso(ev), granularity: '5m' })}`,
      sql:
        `SELECT toString(window_start) AS label, sum(events) AS value FROM ${db}.rollups_5m ` +
        `WHERE team_id = ${t} AND window_start >= ${quote(datetime(Math.floor(ev.from.getTime() / WINDOW_MS) * WINDOW_MS))} ` +
        `AND window_start < ${quote(datetime(ev.to.getTime()))} GROUP BY window_start ORDER BY window_start`,
    },
    {
      name: 'series/dau',
      path: `${base}/series/dau${query(iso(dau))}`,
      sql:
        `SELECT toString(day) AS label, toUInt64(uniqMerge(users)) AS value FROM ${db}.dau_daily ` +
        `WHERE team_id = ${t} AND day >= ${quote(date(dau.from.getTime()))} AND day <= ${quote(lastDay(dau.to.getTime()))} ` +
        'GROUP BY day ORDER BY day',
    },
    {
      name: 'top-events',
      path: `${base}/top-events${query({ ...iso(top), limit: 10 })}`,
      sql:
        `SELECT event AS label, sum(events) AS value FROM ${db}.rollups_daily ` +
        `WHERE team_id = ${t} AND day >= ${quote(date(top.from.getTime()))} AND day <= ${quote(lastDay(top.to.getTime()))} ` +
        'GROUP BY event ORDER BY value DESC, label LIMIT 10',
    },
    { name: 'rejections', path: `${base}/rejections${query(iso(rej))}`, sql: null },
  ]
}

// ---- api mode ----------------------------------------------------------------

async function timed(fn) {
  const start = performance.now()
  const body = await fn()
  return { ms: performance.now() - start, body }
}

async function runApi(o) {
  const consoleUrl = o.console.replace(/\/+$/, '')
  const rounds = Number(o.rounds ?? 200)
  const warmup = Number(o.warmup ?? 10)
  // The console's own per-query limits (console/src/config.rs defaults),
  // sent as the console's ClickHouse client sends them.
  const chUrl = new URL(o.clickhouse)
  chUrl.searchParams.set('max_execution_time', '10')
  chUrl.searchParams.set('max_rows_to_read', '200000000')
  chUrl.searchParams.set('max_bytes_to_read', String(20 * 2 ** 30))
  chUrl.searchParams.set('output_format_json_quote_64bit_integers', '0')

  async function viaConsole(call) {
    const response = await fetch(consoleUrl + call.path, { headers: { Authorization: `Bearer ${o.key}` } })
    const text = await response.text()
    if (response.status !== 200) throw new Error(`${call.path}: HTTP ${response.status}: ${text.slice(0, 500)}`)
    return JSON.parse(text)
  }
  async function direct(call) {
    const response = await fetch(chUrl, { method: 'POST', body: `${call.sql} FORMAT JSONCompact` })
    const text = await response.text()
    if (response.status !== 200) throw new Error(`ClickHouse: HTTP ${response.status}: ${text.slice(0, 500)}`)
    const parsed = JSON.parse(text)
    return { points: parsed.data.map(([label, value]) => ({ label, value: Number(value) })) }
  }

  const names = overviewCalls(o.team, o.database, Date.now()).map((c) => c.name)
  const sequential = { console: {}, direct: {} }
  for (const n of names) sequential.console[n] = []
  for (const n of names.slice(0, 3)) sequential.direct[n] = []
  const parallel = { console4: [], console3: [], direct3: [], console4_each: {} }
  for (const n of names) parallel.console4_each[n] = []

  // A failed call is counted (and its time kept out of the samples), not
  // fatal: the run goes on and the report says how many failed and why.
  const errors = []
  async function attempt(side, call, round) {
    try {
      return await timed(() => (side === 'direct' ? direct(call) : viaConsole(call)))
    } catch (err) {
      errors.push({ side, call: call.name, round, message: String(err.message || err).slice(0, 300) })
      log(`error (${side} ${call.name}, round ${round}): ${err.message}`)
      return null
    }
  }

  // Same answers from both paths (once, after the warm-up): the baseline
  // must be the same work.
  let checked = null
  const answers = {}

  log(`sequential: ${warmup} warm-up + ${rounds} rounds of 4 console calls and 3 direct queries`)
  for (let r = 0; r < warmup + rounds; r++) {
    const calls = overviewCalls(o.team, o.database, Date.now())
    const measured = r >= warmup
    // Alternate which path goes first, so neither always follows the other.
    const order = r % 2 === 0 ? ['console', 'direct'] : ['direct', 'console']
    const got = { console: {}, direct: {} }
    for (const side of order) {
      for (const call of calls) {
        if (side === 'direct' && !call.sql) continue
        const t = await attempt(side, call, r)
        got[side][call.name] = t?.body ?? null
        if (measured && t) sequential[side][call.name].push(t.ms)
      }
    }
    const complete = calls.every((c) => got.console[c.name] && (!c.sql || got.direct[c.name]))
    if (checked === null && r >= warmup && complete) {
      checked = {}
      for (const call of calls.slice(0, 3)) {
        const a = JSON.stringify(got.console[call.name].points)
        const b = JSON.stringify(got.direct[call.name].points)
        checked[call.name] = a === b
        if (a !== b) log(`MISMATCH ${call.name}: console ${a.slice(0, 300)} vs direct ${b.slice(0, 300)}`)
      }
      for (const call of calls) {
        const body = got.console[call.name]
        answers[call.name] = {
          path: call.path,
          sql: call.sql,
          points: Array.isArray(body.points) ? body.points.length : undefined,
          sample: JSON.stringify(body).slice(0, 400),
          bytes: JSON.stringify(body).length,
          truncated: body.truncated,
        }
      }
    }
  }

  log(`parallel: ${warmup} warm-up + ${rounds} rounds of the page's four calls at once (and the three ClickHouse ones, both paths)`)
  for (let r = 0; r < warmup + rounds; r++) {
    const measured = r >= warmup
    const calls = overviewCalls(o.team, o.database, Date.now())
    const each = {}
    const all = (side, list) =>
      timed(async () => {
        const answers = await Promise.all(list.map((call) => attempt(side, call, r)))
        list.forEach((call, i) => {
          if (side === 'console4') each[call.name] = answers[i]?.ms ?? null
        })
        return answers.every(Boolean)
      })
    const four = await all('console4', calls)
    const three = await all('console', calls.slice(0, 3))
    const threeDirect = await all('direct', calls.slice(0, 3))
    // A round with a failed call has no whole-overview time (the page
    // would show an error); its successful calls still count.
    if (measured) {
      if (four.body) parallel.console4.push(four.ms)
      if (three.body) parallel.console3.push(three.ms)
      if (threeDirect.body) parallel.direct3.push(threeDirect.ms)
      for (const n of names) if (each[n] !== null) parallel.console4_each[n].push(each[n])
    }
  }

  const result = {
    rounds,
    warmup,
    team: o.team,
    database: o.database,
    answers_equal: checked,
    errors,
    answers,
    sequential: {
      console: Object.fromEntries(names.map((n) => [n, summary(sequential.console[n])])),
      direct: Object.fromEntries(names.slice(0, 3).map((n) => [n, summary(sequential.direct[n])])),
    },
    parallel: {
      console_all_four: summary(parallel.console4),
      console_clickhouse_three: summary(parallel.console3),
      direct_clickhouse_three: summary(parallel.direct3),
      console_all_four_each: Object.fromEntries(names.map((n) => [n, summary(parallel.console4_each[n])])),
    },
    samples: { sequential, parallel },
  }
  return result
}

// ---- page mode ---------------------------------------------------------------

// Runs in the page before its own scripts: notes performance.now() at the
// DOM change that marks the overview as loaded.
function watchLoaded() {
  const check = () => {
    if (window.__sluiceLoadedAt !== undefined) return
    if (document.querySelector('main[data-page=overview][data-loaded="true"]')) {
      window.__sluiceLoadedAt = performance.now()
    }
  }
  new MutationObserver(check).observe(document, {
    subtree: true,
    childList: true,
    attributes: true,
    attributeFilter: ['data-loaded', 'data-page'],
  })
}

async function runPage(o) {
  const { chromium } = require('playwright-core')
  const consoleUrl = o.console.replace(/\/+$/, '')
  const runs = Number(o.runs ?? 10)
  const timeout = Number(o.timeout_ms ?? 30000)
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
  const results = []
  const version = browser.version()
  try {
    for (let run = 1; run <= runs; run++) {
      // A new context: empty HTTP cache, storage and session.
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } })
      await context.addInitScript(watchLoaded)
      const page = await context.newPage()
      const cdp = await context.newCDPSession(page)
      await cdp.send('Network.enable')
      const requests = new Map()
      const sentAt = new Map()
      cdp.on('Network.requestWillBeSent', (e) => sentAt.set(e.requestId, e.timestamp))
      cdp.on('Network.responseReceived', (e) => {
        requests.set(e.requestId, { url: e.response.url, status: e.response.status, type: e.type, bytes: 0, ms: null })
      })
      cdp.on('Network.loadingFinished', (e) => {
        const r = requests.get(e.requestId)
        if (!r) return
        r.bytes = e.encodedDataLength
        // CDP timestamps are seconds on one monotonic clock.
        if (sentAt.has(e.requestId)) r.ms = Math.round((e.timestamp - sentAt.get(e.requestId)) * 10000) / 10
      })
      const pageErrors = []
      page.on('pageerror', (error) => pageErrors.push(error.message))
      page.on('console', (m) => m.type() === 'error' && pageErrors.push(`console: ${m.text()}`))

      await page.goto(`${consoleUrl}/#key=${encodeURIComponent(o.key)}`, { waitUntil: 'commit', timeout })
      await page.waitForFunction(() => window.__sluiceLoadedAt !== undefined, null, { timeout, polling: 20 })
      // Let the last network events arrive over CDP before counting bytes.
      await new Promise((resolve) => setTimeout(resolve, 300))
      const seen = await page.evaluate(() => {
        const nav = performance.getEntriesByType('navigation')[0]
        const error = document.querySelector('[data-testid=error]')
        const rows = (name) => document.querySelectorAll(`table[data-table="${name}"] tbody tr`).length
        return {
          loaded_ms: window.__sluiceLoadedAt,
          response_end_ms: nav ? nav.responseEnd : null,
          dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
          load_event_ms: nav ? nav.loadEventEnd : null,
          error: error && !error.hidden ? error.textContent : null,
          team: document.querySelector('#team-picker')?.value ?? null,
          table_rows: {
            'events-5m': rows('events-5m'),
            dau: rows('dau'),
            'top-events': rows('top-events'),
            rejections: rows('rejections'),
          },
        }
      })
      const list = [...requests.values()]
      const bytes = list.reduce((a, r) => a + r.bytes, 0)
      const byType = {}
      for (const r of list) {
        byType[r.type] ??= { requests: 0, bytes: 0 }
        byType[r.type].requests += 1
        byType[r.type].bytes += r.bytes
      }
      const failed = list.filter((r) => r.status >= 400).map((r) => `${r.status} ${r.url}`)
      // Each API call's time in the page (request sent → body received).
      const apiCalls = {}
      for (const r of list) {
        const path = new URL(r.url).pathname
        if (path.startsWith('/api/v1/')) apiCalls[path.replace(/^\/api\/v1\/(teams\/[^/]+\/)?/, '')] = r.ms
      }
      const one = { run, ...seen, requests: list.length, bytes, by_type: byType, api_calls_ms: apiCalls, failed, page_errors: pageErrors }
      log(`run ${run}: loaded at ${seen.loaded_ms.toFixed(1)} ms, ${list.length} requests, ${bytes} bytes`)
      if (seen.error || failed.length || pageErrors.length) {
        log(`run ${run} problems: ${JSON.stringify({ error: seen.error, failed, pageErrors })}`)
      }
      results.push(one)
      await context.close()
    }
  } finally {
    await browser.close()
  }
  const loaded = summary(results.map((r) => r.loaded_ms))
  return {
    runs,
    chromium: version,
    loaded_ms: { median: median(results.map((r) => r.loaded_ms)), ...loaded },
    bytes: { min: Math.min(...results.map((r) => r.bytes)), max: Math.max(...results.map((r) => r.bytes)) },
    requests: results[0]?.requests ?? 0,
    problems: results.filter((r) => r.error || r.failed.length || r.page_errors.length).length,
    results,
  }
}

async function main() {
  const [mode, ...rest] = process.argv.slice(2)
  const o = options(rest)
  if (!o.out) throw new Error('--out is required')
  const started = new Date().toISOString()
  let result
  if (mode === 'api') result = await runApi(o)
  else if (mode === 'page') result = await runPage(o)
  else throw new Error(`mode must be api or page, not ${mode}`)
  result.started = started
  result.finished = new Date().toISOString()
  result.node = process.version
  result.loadavg = os.loadavg()
  fs.writeFileSync(o.out, `${JSON.stringify(result, null, 1)}\n`)
  log(`wrote ${o.out}`)
}

main().catch((err) => {
  log(err.stack || String(err))
  process.exit(1)
})
