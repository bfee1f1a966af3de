//! The events the benchmark sends, all generated before any timing starts.
//!
//! Each event is a realistic ~1.2 KB e-commerce/app event (properties and
//! device context), varied per event so zstd in the producer sees ordinary
//! redundancy rather than one record repeated (which would compress to
//! almost nothing and flatter both sides).
//!
//! The same pool feeds both paths: HTTP bodies for the gateway, and for the
//! raw-producer baseline the exact record values the gateway would write,
//! built with `sluice_core`'s own decode/admit/serialise so their size and
//! shape match byte for byte.

use anyhow::Context;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sluice_core::kafka::partition_key;
use sluice_core::{IncomingEvent, Limits, Timestamp};
use uuid::Uuid;

/// Team id the bench API key maps to (the script configures the gateway so).
pub const TEAM: &str = "bench";

/// A small, deterministic PRNG (SplitMix64): reproducible workloads without
/// another dependency, and fast enough that generation is not a cost.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len);
        while out.len() < len {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(len);
        out
    }
}

/// One Kafka record as the gateway would produce it for an accepted event.
#[derive(Debug, Clone)]
pub struct RecordPayload {
    pub key: String,
    pub value: Vec<u8>,
    pub schema_version: String,
}

/// The pre-generated workload.
#[derive(Debug)]
pub struct Workload {
    /// Each event's JSON text as a client sends it.
    events: Vec<String>,
    /// The matching `events.raw` record values (for the baseline).
    pub records: Vec<RecordPayload>,
}

const EVENT_NAMES: &[&str] = &[
    "Product Viewed",
    "Product Added",
    "Checkout Started",
    "Button Clicked",
    "Search Performed",
    "Screen Viewed",
];
const PRODUCTS: &[&str] = &[
    "Merino Wool Crew Sweater",
    "Waterproof Trail Running Shoe",
    "Stainless Steel Insulated Bottle 750 ml",
    "Organic Cotton Relaxed Fit T-Shirt",
    "Noise Cancelling Over-Ear Headphones",
    "Cast Iron Skillet 28 cm",
];
const CATEGORIES: &[&str] = &[
    "apparel/knitwear",
    "footwear/running",
    "outdoor/hydration",
    "apparel/tops",
    "electronics/audio",
    "home/kitchen",
];
const LOCALES: &[(&str, &str)] = &[
    ("de-DE", "Europe/Berlin"),
    ("en-US", "America/New_York"),
    ("fr-FR", "Europe/Paris"),
    ("en-GB", "Europe/London"),
    ("ja-JP", "Asia/Tokyo"),
    ("pt-BR", "America/Sao_Paulo"),
];
const DEVICES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "mobile",
        "Apple",
        "iPhone15,2",
        "iOS",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    ),
    (
        "mobile",
        "Google",
        "Pixel 8",
        "Android",
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.113 Mobile Safari/537.36",
    ),
    (
        "desktop",
        "Apple",
        "MacBookPro18,3",
        "macOS",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15",
    ),
    (
        "desktop",
        "Dell",
        "XPS 15 9530",
        "Windows",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    ),
];

/// One client-side event, as an SDK would send it.
fn event_json(rng: &mut Rng, users: u64, now_ms: i64) -> Value {
    let user = rng.below(users);
    let product = rng.below(PRODUCTS.len() as u64) as usize;
    let name = PRODUCTS[product];
    let slug: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let product_id = rng.hex(6);
    let (locale, timezone) = LOCALES[rng.below(LOCALES.len() as u64) as usize];
    let (device_type, manufacturer, model, os, user_agent) =
        DEVICES[rng.below(DEVICES.len() as u64) as usize];
    // Client clocks lag a little behind the gateway; well inside the skew rule.
    let timestamp = Timestamp::from_millis(now_ms - rng.below(120_000) as i64);
    let price_cents = 499 + rng.below(30_000);
    json!({
        "event_id": Uuid::now_v7(),
        "event": rng.pick(EVENT_NAMES),
        "user_id": format!("u-{user:07}"),
        "timestamp": timestamp.to_rfc3339(),
        "properties": {
            "product_id": format!("p-{product_id}"),
            "sku": format!("SKU-{:05}-{}", rng.below(100_000), rng.pick(&["S", "M", "L", "XL"])),
            "name": name,
            "category": CATEGORIES[product],
            "brand": rng.pick(&["Northfield", "Alder & Co", "Kestrel", "Baywater"]),
            "variant": rng.pick(&["navy / XL", "black / M", "olive / L", "grey / S"]),
            "price": price_cents as f64 / 100.0,
            "currency": rng.pick(&["EUR", "USD", "GBP", "JPY"]),
            "quantity": 1 + rng.below(3),
            "position": rng.below(48),
            "list_id": rng.pick(&["search-results", "category-grid", "recommended-for-you"]),
            "in_stock": rng.below(10) > 0,
            "rating": (30 + rng.below(21)) as f64 / 10.0,
            "review_count": rng.below(2_000),
            "url": format!("https://shop.example.com/p/{slug}-{product_id}?ref=search"),
            "path": format!("/p/{slug}-{product_id}"),
            "referrer": format!("https://shop.example.com/search?q={}", rng.pick(&["wool+sweater", "running+shoes", "bottle", "headphones"])),
            "session_id": format!("s-{}", rng.hex(16)),
            "experiment": {"id": "pdp-gallery-v3", "variant": rng.pick(&["A", "B"])},
        },
        "context": {
            "library": {"name": "sluice-js", "version": "2.4.1"},
            "app": {"name": "Shop", "version": "5.12.0", "build": "5120"},
            "device": {"type": device_type, "manufacturer": manufacturer, "model": model, "id": rng.hex(32)},
            "os": {"name": os, "version": format!("{}.{}.{}", 10 + rng.below(8), rng.below(6), rng.below(4))},
            "screen": {"width": 1179, "height": 2556, "density": 3},
            "locale": locale,
            "timezone": timezone,
            "ip": format!("203.0.113.{}", rng.below(255)),
            "user_agent": user_agent,
            "campaign": {"source": rng.pick(&["newsletter", "google", "instagram"]), "medium": rng.pick(&["email", "cpc", "social"]), "name": "spring-sale"},
        },
    })
}

impl Workload {
    /// Generates `pool` distinct events over `users` users.
    pub fn generate(pool: usize, users: u64, seed: u64) -> anyhow::Result<Self> {
        let mut rng = Rng::new(seed);
        let now = Timestamp::now();
        let limits = Limits::default();
        let mut events = Vec::with_capacity(pool);
        let mut records = Vec::with_capacity(pool);
        for _ in 0..pool {
            let text = serde_json::to_string(&event_json(&mut rng, users, now.as_millis()))?;
            // The record value exactly as the gateway builds it: decode,
            // admit (stamps team and received_at), serialise.
            let raw: &serde_json::value::RawValue = serde_json::from_str(&text)?;
            let event = IncomingEvent::decode(raw, &limits)
                .map_err(|r| anyhow::anyhow!("generated event does not decode: {r:?}"))?
                .admit(TEAM, now, &limits, Uuid::now_v7)
                .map_err(|r| anyhow::anyhow!("generated event is not admitted: {r:?}"))?;
            records.push(RecordPayload {
                key: partition_key(TEAM, &event.user_id),
                value: serde_json::to_vec(&event).context("serialising a record")?,
                schema_version: event.schema_version.to_string(),
            });
            events.push(text);
        }
        Ok(Self { events, records })
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Mean size of one event as sent, in bytes.
    pub fn mean_event_bytes(&self) -> f64 {
        mean(self.events.iter().map(String::len))
    }

    /// Mean size of one record value as produced, in bytes.
    pub fn mean_record_bytes(&self) -> f64 {
        mean(self.records.iter().map(|r| r.value.len()))
    }

    /// `count` request bodies of `batch` events each, consecutive windows of
    /// the pool so ids never repeat inside one body.
    pub fn bodies(&self, batch: usize, count: usize) -> Vec<Bytes> {
        let n = self.events.len();
        (0..count)
            .map(|i| {
                let mut body = String::with_capacity(batch * 1300 + 16);
                body.push_str("{\"events\":[");
                for j in 0..batch {
                    if j > 0 {
                        body.push(',');
                    }
                    body.push_str(&self.events[(i * batch + j) % n]);
                }
                body.push_str("]}");
                Bytes::from(body)
            })
            .collect()
    }
}

/// Where the generated events are sent: the native API, or one of the
/// drop-in SDK routes with the same events in that SDK's shape. One event
/// goes where browsers send one: analytics.js to `/v1/track`, posthog-js to
/// `/e/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    Native,
    /// `POST /v1/batch` as `@segment/analytics-node` sends it (Basic auth);
    /// one event: `POST /v1/track` with the message as the body.
    Segment,
    /// `POST /batch/` as `posthog-node` sends it (`api_key` in the body);
    /// one event: `POST /e/`, the same body, as posthog-js sends it.
    PostHog,
}

impl Route {
    /// The path a request of `batch` events goes to.
    pub fn path(self, batch: usize) -> &'static str {
        match (self, batch) {
            (Self::Native, _) => "/v1/events",
            (Self::Segment, 1) => "/v1/track",
            (Self::Segment, _) => "/v1/batch",
            (Self::PostHog, 1) => "/e/",
            (Self::PostHog, _) => "/batch/",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Segment => "segment",
            Self::PostHog => "posthog",
        }
    }
}

impl std::str::FromStr for Route {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "native" => Ok(Self::Native),
            "segment" => Ok(Self::Segment),
            "posthog" => Ok(Self::PostHog),
            other => Err(format!("`{other}`: expected native, segment or posthog")),
        }
    }
}

impl Workload {
    /// As [`Workload::bodies`], for `route`: the same events, each turned
    /// into the message its SDK would send (a Segment `track` with the
    /// context as `context`; a PostHog capture with the context's fields as
    /// `$`-prefixed properties, as posthog-js and posthog-node send device
    /// data), with the batch's send time, and for PostHog the key in the body.
    /// A Segment request of one event is the message itself, with its own
    /// `sentAt`.
    pub fn route_bodies(
        &self,
        route: Route,
        batch: usize,
        count: usize,
        api_key: &str,
    ) -> anyhow::Result<Vec<Bytes>> {
        if route == Route::Native {
            return Ok(self.bodies(batch, count));
        }
        let sent_at = Timestamp::now().to_rfc3339();
        let messages = self
            .events
            .iter()
            .map(|text| {
                let event: Value = serde_json::from_str(text)?;
                let message = match route {
                    Route::Segment => json!({
                        "type": "track",
                        "event": event["event"],
                        "userId": event["user_id"],
                        "messageId": event["event_id"],
                        "timestamp": event["timestamp"],
                        "properties": event["properties"],
                        "context": event["context"],
                        "integrations": {},
                    }),
                    Route::PostHog | Route::Native => {
                        let mut properties = event["properties"].clone();
                        if let (Some(props), Some(context)) =
                            (properties.as_object_mut(), event["context"].as_object())
                        {
                            for (name, value) in context {
                                props.insert(format!("${name}"), value.clone());
                            }
                        }
                        json!({
                            "event": event["event"],
                            "distinct_id": event["user_id"],
                            "uuid": event["event_id"],
                            "timestamp": event["timestamp"],
                            "properties": properties,
                        })
                    }
                };
                Ok(serde_json::to_string(&message)?)
            })
            .collect::<anyhow::Result<Vec<String>>>()?;
        let n = messages.len();
        if route == Route::Segment && batch == 1 {
            return (0..count)
                .map(|i| {
                    let mut message: Value = serde_json::from_str(&messages[i % n])?;
                    message["sentAt"] = Value::from(sent_at.as_str());
                    Ok(Bytes::from(serde_json::to_string(&message)?))
                })
                .collect();
        }
        let (head, tail) = match route {
            Route::PostHog => (
                format!(
                    "{{\"api_key\":{},\"batch\":[",
                    serde_json::to_string(api_key)?
                ),
                format!("],\"sent_at\":\"{sent_at}\"}}"),
            ),
            _ => (
                "{\"batch\":[".to_owned(),
                format!("],\"sentAt\":\"{sent_at}\"}}"),
            ),
        };
        Ok((0..count)
            .map(|i| {
                let mut body = String::with_capacity(batch * 1400 + 64);
                body.push_str(&head);
                for j in 0..batch {
                    if j > 0 {
                        body.push(',');
                    }
                    body.push_str(&messages[(i * batch + j) % n]);
                }
                body.push_str(&tail);
                Bytes::from(body)
            })
            .collect())
    }
}

fn mean(sizes: impl ExactSizeIterator<Item = usize>) -> f64 {
    let n = sizes.len().max(1);
    sizes.sum::<usize>() as f64 / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_realistic_sized_and_admitted() {
        let workload = Workload::generate(200, 50, 7).unwrap();
        let mean = workload.mean_event_bytes();
        assert!((1000.0..1500.0).contains(&mean), "mean event size {mean}");
        assert!(
            workload.mean_record_bytes() > mean,
            "record adds gateway fields"
        );
        assert!(workload.records[0].key.starts_with("bench:u-"));
    }

    #[test]
    fn sdk_bodies_carry_the_same_events_in_each_sdks_shape() {
        let workload = Workload::generate(50, 10, 7).unwrap();
        let native: Value = serde_json::from_slice(&workload.bodies(3, 1)[0]).unwrap();
        let segment = &workload.route_bodies(Route::Segment, 3, 1, "sk_x").unwrap()[0];
        let segment: Value = serde_json::from_slice(segment).unwrap();
        let posthog = &workload.route_bodies(Route::PostHog, 3, 1, "sk_x").unwrap()[0];
        let posthog: Value = serde_json::from_slice(posthog).unwrap();
        assert_eq!(posthog["api_key"], "sk_x");
        assert!(segment["sentAt"].is_string() && posthog["sent_at"].is_string());
        for i in 0..3 {
            let event = &native["events"][i];
            let s = &segment["batch"][i];
            let p = &posthog["batch"][i];
            assert_eq!(s["messageId"], event["event_id"]);
            assert_eq!(p["uuid"], event["event_id"]);
            assert_eq!(s["userId"], event["user_id"]);
            assert_eq!(p["distinct_id"], event["user_id"]);
            assert_eq!(s["properties"], event["properties"]);
            assert_eq!(s["context"], event["context"]);
            assert_eq!(p["properties"]["$device"], event["context"]["device"]);
            assert_eq!(p["properties"]["sku"], event["properties"]["sku"]);
        }
        let single = &workload.route_bodies(Route::Segment, 1, 1, "sk_x").unwrap()[0];
        let single: Value = serde_json::from_slice(single).unwrap();
        assert_eq!(single["messageId"], native["events"][0]["event_id"]);
        assert!(single["sentAt"].is_string());
        assert_eq!(Route::Segment.path(1), "/v1/track");
        assert_eq!(Route::PostHog.path(1), "/e/");
        assert_eq!(Route::PostHog.path(100), "/batch/");
        assert_eq!("posthog".parse::<Route>(), Ok(Route::PostHog));
        assert!("mixpanel".parse::<Route>().is_err());
    }

    #[test]
    fn bodies_are_batches_without_repeated_ids() {
        let workload = Workload::generate(300, 50, 7).unwrap();
        for body in workload.bodies(100, 5) {
            let value: Value = serde_json::from_slice(&body).unwrap();
            let events = value["events"].as_array().unwrap();
            assert_eq!(events.len(), 100);
            let ids: std::collections::HashSet<_> =
                events.iter().map(|e| e["event_id"].to_string()).collect();
            assert_eq!(ids.len(), 100);
        }
    }
}
