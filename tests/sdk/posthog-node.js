// Drives posthog-node against a Sluice gateway (gzip bodies to /batch/).
// Env (SDK_PAST_MS included) and output as in segment-node.js; ids are the
// events' `uuid`s.
const { PostHog } = require('posthog-node')
const { randomUUID } = require('node:crypto')

const client = new PostHog(process.env.SLUICE_KEY, {
  host: process.env.SLUICE_URL,
  flushAt: 7,
  flushInterval: 200,
  fetchRetryCount: 5,
  fetchRetryDelay: 500,
  disableGeoip: true,
})
const run = process.env.SDK_RUN
const count = Number(process.env.SDK_EVENTS || '20')
const errors = []
client.on('error', (err) => errors.push(String(err && err.message ? err.message : err)))

const past = process.env.SDK_PAST_MS ? { timestamp: new Date(Date.now() - Number(process.env.SDK_PAST_MS)) } : {}
const events = []
for (let i = 0; i < count; i++) {
  const uuid = randomUUID()
  const distinctId = `user-${i % 3}`
  client.capture({ distinctId, event: 'item purchased', uuid, properties: { run, seq: i, $set: { plan: 'pro' } }, ...past })
  events.push({ uuid, event: 'item purchased', distinctId })
}

client.shutdown(60000).then(() => {
  // posthog-node reports delivery failures only through 'error'; with none,
  // every captured event was acknowledged.
  const out = errors.length === 0 ? { sent: events, failed: [] } : { sent: [], failed: events, errors }
  process.stdout.write(JSON.stringify(out) + '\n')
})
