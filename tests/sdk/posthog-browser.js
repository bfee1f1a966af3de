// posthog-js in headless Chromium against a Sluice gateway. A static server
// on its own port serves the test page, so every capture is a real
// cross-origin request (CORS) from a real browser with posthog-js's own
// batching, gzip and retry queue. Env and output as in segment-node.js;
// ids are the events' `uuid`s as posthog-js generated them.
const http = require('node:http')
const path = require('node:path')
const fs = require('node:fs')
const { chromium } = require('playwright-core')

const gateway = process.env.SLUICE_URL
const key = process.env.SLUICE_KEY
const run = process.env.SDK_RUN
const count = Number(process.env.SDK_EVENTS || '10')
const bundle = path.join(path.dirname(require.resolve('posthog-js/package.json')), 'dist', 'array.full.js')

const page = `<!doctype html><html><head><meta charset="utf-8"><title>sluice sdk test</title>
<script src="/posthog.js"></script></head><body><script>
  window.__captured = []
  posthog.init(${JSON.stringify(key)}, {
    api_host: ${JSON.stringify(gateway)},
    autocapture: false, capture_pageview: false, capture_pageleave: false,
    disable_session_recording: true, disable_surveys: true, advanced_disable_flags: true,
    persistence: 'memory',
    // Headless Chromium's user agent would otherwise be dropped as a bot.
    opt_out_useragent_filter: true,
    // Batches flush every 0.5 s instead of 3 s, to keep the test short.
    request_queue_config: { flush_interval_ms: 500 },
    before_send: (event) => { window.__captured.push({ uuid: event.uuid, event: event.event }); return event },
  })
  posthog.identify('browser-user-${run}', { plan: 'pro' })
  for (let i = 0; i < ${count}; i++) posthog.capture('button clicked', { run: ${JSON.stringify(run)}, seq: i })
</script></body></html>`

const server = http.createServer((req, res) => {
  if (req.url === '/posthog.js') {
    res.writeHead(200, { 'content-type': 'application/javascript' })
    fs.createReadStream(bundle).pipe(res)
  } else {
    res.writeHead(200, { 'content-type': 'text/html' })
    res.end(page)
  }
})

async function main() {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const origin = `http://127.0.0.1:${server.address().port}`
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
  })
  const statuses = []
  let inFlight = 0
  let lastActivity = Date.now()
  const tab = await browser.newPage()
  tab.on('console', (message) => console.error(`[page ${message.type()}] ${message.text()}`))
  tab.on('pageerror', (error) => console.error(`[page error] ${error.message}`))
  const toGateway = (request) => request.url().startsWith(gateway)
  tab.on('request', (request) => { if (toGateway(request)) { inFlight++; lastActivity = Date.now() } })
  tab.on('requestfinished', async (request) => {
    if (!toGateway(request)) return
    const response = await request.response()
    // Say how the body travelled: posthog-js gzips without announcing it.
    const body = request.postDataBuffer()
    const gzip = body && body[0] === 0x1f && body[1] === 0x8b ? ' gzip' : ''
    const url = new URL(request.url())
    statuses.push(`${request.method()} ${url.pathname}${url.search} ${response ? response.status() : 0}${gzip}`)
    inFlight--; lastActivity = Date.now()
  })
  tab.on('requestfailed', (request) => {
    if (!toGateway(request)) return
    statuses.push(`${request.method()} ${new URL(request.url()).pathname} failed: ${request.failure()?.errorText}`)
    inFlight--; lastActivity = Date.now()
  })
  await tab.goto(origin + '/')
  const captured = await tab.evaluate(() => window.__captured)
  // Settled: a capture was answered 200 and nothing went to the gateway for
  // SDK_QUIET_MS (default 2.5 s, five flush intervals; longer when the
  // gateway answers 503 at first, as posthog-js retries after about 3 s).
  const quietMs = Number(process.env.SDK_QUIET_MS || '2500')
  const deadline = Date.now() + 45000
  const ok = () => statuses.some((s) => s.startsWith('POST') && / 200( gzip)?$/.test(s))
  while (Date.now() < deadline && !(ok() && inFlight === 0 && Date.now() - lastActivity > quietMs)) {
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  await browser.close()
  server.close()
  const sent = ok() ? captured : []
  process.stdout.write(JSON.stringify({ sent, failed: ok() ? [] : captured, statuses }) + '\n')
}

main().catch((err) => { console.error(err); process.exit(1) })
