// Drives @segment/analytics-node against a Sluice gateway. Called by
// tests/tests/sdk_compat.rs with SLUICE_URL, SLUICE_KEY, SDK_EVENTS (track
// calls to make) and SDK_RUN (a tag put in every event). Prints one JSON line:
// {"sent": [{messageId, type, event, userId}], "failed": [...]}, where "sent"
// holds exactly the messages the SDK reports as delivered. SDK_STALE=1 adds
// one track call dated sixty days ago. SDK_PAST_MS dates every other call
// that long ago (so the aggregator's windows are closed when it reads them).
const { Analytics } = require('@segment/analytics-node')

const url = process.env.SLUICE_URL
const analytics = new Analytics({
  writeKey: process.env.SLUICE_KEY,
  host: url,
  flushAt: 7,
  flushInterval: 200,
  maxRetries: 5,
})
const run = process.env.SDK_RUN
const count = Number(process.env.SDK_EVENTS || '20')
const sent = []
const failed = []

function record(err, ctx) {
  const e = ctx.event
  const entry = { messageId: e.messageId, type: e.type, event: e.event ?? null, userId: e.userId ?? e.anonymousId }
  ;(err ? failed : sent).push(err ? { ...entry, error: String(err) } : entry)
}

const past = process.env.SDK_PAST_MS ? { timestamp: new Date(Date.now() - Number(process.env.SDK_PAST_MS)) } : {}
for (let i = 0; i < count; i++) {
  analytics.track({ userId: `user-${i % 3}`, event: 'Item Purchased', properties: { run, seq: i }, ...past }, record)
}
analytics.identify({ anonymousId: `anon-${run}`, traits: { run, plan: 'pro' }, ...past }, record)
analytics.page({ userId: 'user-0', name: 'Pricing', properties: { run }, ...past }, record)
if (process.env.SDK_STALE) {
  // Sixty days old: outside the contract's window, so the gateway rejects it.
  const timestamp = new Date(Date.now() - 60 * 86400 * 1000)
  analytics.track({ userId: 'user-stale', event: 'Stale Event', timestamp, properties: { run } }, record)
}

analytics.closeAndFlush({ timeout: 60000 }).then(() => {
  process.stdout.write(JSON.stringify({ sent, failed }) + '\n')
})
