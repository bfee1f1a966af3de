//! `sluice-bench-schemas`: what schema validation adds to the gateway's
//! per-event work, measured in one process on one thread.
//!
//! The work per event is the gateway's ingest stage without HTTP and Kafka,
//! built from `sluice-core`'s own functions: decode the event from the batch
//! (`IncomingEvent::decode`), apply the contract (`admit`), serialise the
//! record value and key. Three variants, interleaved over several rounds so
//! a noisy neighbour hurts all of them alike:
//! - `none`: no schema (what a team without schemas pays);
//! - `scan`: plus a bare serde pass over `properties` (`IgnoredAny`): the
//!   floor any validator that reads the text must pay;
//! - `tree`: plus parsing `properties` into a `serde_json::Value` and
//!   `Schema::validate` over it (the obvious design, kept for comparison);
//! - `validate`: plus `Schema::validate_text`, exactly what the gateway calls
//!   per event: checks while parsing, no tree (its registry lookup, two hash
//!   probes per event, is left out).
//!
//! The schema is realistic: 20 properties of every supported kind (formats,
//! enums, bounds, a nested object, an array, a nullable union), closed
//! content model. Every generated event conforms, so the full walk is timed.
//!
//! Three more variants run `validate_text` over the same events with the
//! same schema rewritten with the keywords of issue 24:
//! - `pattern`: six string properties also carry a `pattern`;
//! - `ref`: `utm_*` and `address` are `$ref`s into `$defs` (a `$ref` alone is
//!   expanded at registration, so this should cost what `validate` does);
//! - `anyOf`: `price` is a number or a numeric string, `referrer` a string or
//!   null, `address` a closed object or null, all as `anyOf` (an instance
//!   under an applicator is parsed into a value, so objects there cost more).
//!
//! Usage: `sluice-bench-schemas [SECONDS_PER_SLICE] [ROUNDS]` (defaults 1, 5).

use std::hint::black_box;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_core::{IncomingEvent, Limits, Timestamp};
use sluice_schemas::Schema;

const EVENTS: usize = 2000;
const BATCH: usize = 100;

fn pattern_schema() -> Value {
    let mut s = schema();
    let p = &mut s["properties"];
    p["country"]["pattern"] = json!("^[A-Z]{2}$");
    p["locale"]["pattern"] = json!("^[a-z]{2}-[A-Z]{2}$");
    p["utm_campaign"] = json!({"type": "string", "pattern": "^[a-z]+-[0-9]+$"});
    p["utm_source"] = json!({"type": "string", "pattern": "^[a-z0-9_-]{1,100}$"});
    p["address"]["properties"]["zip"]["pattern"] = json!("^[0-9]{5}$");
    p["email"]["pattern"] = json!("^[^@\\s]+@[^@\\s]+$");
    s
}

fn ref_schema() -> Value {
    let mut s = schema();
    s["$defs"] = json!({
        "short": s["properties"]["utm_source"].clone(),
        "address": s["properties"]["address"].clone(),
    });
    let p = &mut s["properties"];
    for name in ["utm_source", "utm_medium", "utm_campaign"] {
        p[name] = json!({"$ref": "#/$defs/short"});
    }
    p["address"] = json!({"$ref": "#/$defs/address", "description": "where the team is"});
    s
}

fn any_of_schema() -> Value {
    let mut s = schema();
    let p = &mut s["properties"];
    p["price"] = json!({"anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}
    ]});
    p["referrer"] = json!({"anyOf": [{"type": "string", "maxLength": 2000}, {"type": "null"}]});
    let address = p["address"].clone();
    p["address"] = json!({"anyOf": [address, {"type": "null"}]});
    s
}

fn schema() -> Value {
    let short = json!({"type": "string", "maxLength": 100});
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["email", "plan", "seats", "signup_at"],
        "properties": {
            "email": {"type": "string", "format": "email", "maxLength": 200},
            "plan": {"enum": ["free", "pro", "team", "enterprise"]},
            "seats": {"type": "integer", "minimum": 1, "maximum": 10000},
            "price": {"type": "number", "minimum": 0},
            "currency": {"enum": ["USD", "EUR", "GBP"]},
            "country": {"type": "string", "minLength": 2, "maxLength": 2},
            "referrer": {"type": ["string", "null"], "maxLength": 2000},
            "utm_source": short,
            "utm_medium": short,
            "utm_campaign": short,
            "trial": {"type": "boolean"},
            "trial_days": {"type": "integer", "minimum": 0, "maximum": 90},
            "signup_at": {"type": "string", "format": "date-time"},
            "user_agent": {"type": "string", "maxLength": 500},
            "screen_width": {"type": "integer", "minimum": 0},
            "screen_height": {"type": "integer", "minimum": 0},
            "locale": {"type": "string", "maxLength": 20},
            "features": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "address": {
                "type": "object",
                "additionalProperties": false,
                "properties": {"city": {"type": "string"}, "zip": {"type": "string"}, "street": {"type": "string"}}
            },
            "session_id": {"type": "string", "format": "uuid"}
        }
    })
}

/// A small deterministic generator: the same events every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn pick<'a>(&mut self, options: &[&'a str]) -> &'a str {
        options[(self.next() % options.len() as u64) as usize]
    }
}

fn event(rng: &mut Rng, i: usize, now: i64) -> Value {
    let n = rng.next();
    json!({
        "event_id": uuid::Uuid::from_u64_pair(n, i as u64 + 1).to_string(),
        "event": "Signup Completed",
        "user_id": format!("user-{}", n % 5000),
        "timestamp": now - (n % 60_000) as i64,
        "schema_version": 1,
        "properties": {
            "email": format!("user{}@example.com", n % 100_000),
            "plan": rng.pick(&["free", "pro", "team", "enterprise"]),
            "seats": 1 + n % 500,
            "price": (n % 10_000) as f64 / 100.0,
            "currency": rng.pick(&["USD", "EUR", "GBP"]),
            "country": rng.pick(&["FR", "DE", "US", "GB", "JP"]),
            "referrer": if n.is_multiple_of(3) { Value::Null } else { json!(format!("https://news.example.com/a/{}", n % 977)) },
            "utm_source": rng.pick(&["google", "newsletter", "twitter"]),
            "utm_medium": rng.pick(&["cpc", "email", "social"]),
            "utm_campaign": format!("spring-{}", n % 17),
            "trial": n.is_multiple_of(2),
            "trial_days": n % 31,
            "signup_at": "2026-11-26T05:00:00.123Z",
            "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
            "screen_width": 1280 + n % 1000,
            "screen_height": 720 + n % 500,
            "locale": rng.pick(&["en-US", "fr-FR", "de-DE"]),
            "features": ["sso", "audit-log", format!("f{}", n % 9)],
            "address": {"city": "Paris", "zip": format!("750{:02}", n % 20), "street": "1 rue de Rivoli"},
            "session_id": uuid::Uuid::from_u64_pair(n ^ 0xdead_beef, 7).to_string()
        }
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    None,
    Scan,
    Tree,
    Validate,
    Pattern,
    Ref,
    AnyOf,
}

const VARIANTS: [Variant; 7] = [
    Variant::None,
    Variant::Scan,
    Variant::Tree,
    Variant::Validate,
    Variant::Pattern,
    Variant::Ref,
    Variant::AnyOf,
];

/// The schemas, indexed like the variants that validate with one.
struct Schemas {
    base: Schema,
    pattern: Schema,
    reference: Schema,
    any_of: Schema,
}

/// The gateway's per-event stage over one body; returns events processed.
fn stage(
    body: &str,
    variant: Variant,
    schemas: &Schemas,
    limits: &Limits,
    now: Timestamp,
) -> usize {
    let schema = &schemas.base;
    #[derive(serde::Deserialize)]
    struct Batch<'a> {
        #[serde(borrow)]
        events: Vec<&'a serde_json::value::RawValue>,
    }
    let batch: Batch<'_> = serde_json::from_str(body).unwrap_or(Batch { events: Vec::new() });
    let mut done = 0;
    for raw in batch.events {
        let Ok(incoming) = IncomingEvent::decode(raw, limits) else {
            continue;
        };
        let Ok(event) = incoming.admit("bench-team", now, limits, uuid::Uuid::now_v7) else {
            continue;
        };
        let ok = match variant {
            Variant::None => true,
            Variant::Scan => {
                serde_json::from_str::<serde::de::IgnoredAny>(event.properties.get()).is_ok()
            }
            Variant::Tree => serde_json::from_str::<Value>(event.properties.get())
                .is_ok_and(|tree| schema.validate(&tree, "properties").is_ok()),
            Variant::Validate => schema
                .validate_text(event.properties.get(), "properties")
                .is_ok(),
            Variant::Pattern | Variant::Ref | Variant::AnyOf => {
                let schema = match variant {
                    Variant::Pattern => &schemas.pattern,
                    Variant::Ref => &schemas.reference,
                    _ => &schemas.any_of,
                };
                schema
                    .validate_text(event.properties.get(), "properties")
                    .is_ok()
            }
        };
        let payload = serde_json::to_vec(&event).unwrap_or_default();
        black_box((event.partition_key(), payload, ok));
        done += usize::from(ok);
    }
    done
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let slice = Duration::from_secs_f64(args.next().map_or(Ok(1.0), |a| a.parse())?);
    let rounds: usize = args.next().map_or(Ok(5), |a| a.parse())?;

    let schemas = Schemas {
        base: Schema::parse(&schema())?,
        pattern: Schema::parse(&pattern_schema())?,
        reference: Schema::parse(&ref_schema())?,
        any_of: Schema::parse(&any_of_schema())?,
    };
    let limits = Limits::default();
    let now = Timestamp::now();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| event(&mut rng, i, now.as_millis()))
        .collect();
    let bodies: Vec<String> = events
        .chunks(BATCH)
        .map(|chunk| json!({ "events": chunk }).to_string())
        .collect();
    let props_bytes = serde_json::to_string(&events[0]["properties"])?.len();
    let event_bytes = serde_json::to_string(&events[0])?.len();
    // Every variant must do the whole walk: refuse to measure otherwise.
    for body in &bodies {
        for variant in VARIANTS {
            anyhow::ensure!(
                stage(body, variant, &schemas, &limits, now) == BATCH,
                "generated events must all be admitted and conform ({variant:?})"
            );
        }
    }

    let mut ns: [Vec<f64>; 7] = Default::default();
    for round in 0..rounds {
        for (i, variant) in VARIANTS.into_iter().enumerate() {
            let started = Instant::now();
            let mut processed = 0usize;
            while started.elapsed() < slice {
                for body in &bodies {
                    processed += stage(body, variant, &schemas, &limits, now);
                }
            }
            let per_event = started.elapsed().as_nanos() as f64 / processed as f64;
            ns[i].push(per_event);
            eprintln!("round {}: {variant:?} {per_event:.0} ns/event", round + 1);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let [none, scan, tree, validate, pattern, reference, any_of] =
        ns.map(|mut v| (median(&mut v), v));
    let spread = |v: &[f64]| format!("{:.0}–{:.0}", v[0], v[v.len() - 1]);
    println!(
        "events: {event_bytes} bytes each as sent, properties {props_bytes} bytes; batches of {BATCH}; {rounds} interleaved rounds of {:.1} s per variant; median (min–max) ns per event",
        slice.as_secs_f64()
    );
    println!();
    println!("| variant | ns/event | range | ratio to none |");
    println!("|---|---:|---:|---:|");
    for (name, (m, v)) in [
        ("none (decode, admit, serialise)", &none),
        ("+ bare scan of `properties` (floor)", &scan),
        ("+ `Value` tree, then validate", &tree),
        ("+ validate while parsing (the gateway)", &validate),
        ("+ validate, schema with 6 `pattern`s", &pattern),
        ("+ validate, schema with 4 `$ref`s", &reference),
        ("+ validate, schema with 3 `anyOf`s", &any_of),
    ] {
        println!("| {name} | {m:.0} | {} | {:.2} |", spread(v), m / none.0);
    }
    println!();
    println!(
        "validation adds {:.0} ns/event (the bare scan {:.0}, a `Value` tree {:.0}); ratio validate/none = {:.2}",
        validate.0 - none.0,
        scan.0 - none.0,
        tree.0 - none.0,
        validate.0 / none.0
    );
    println!(
        "issue 24 keywords, added to validation: `pattern` {:+.0} ns, `$ref` {:+.0} ns, `anyOf` {:+.0} ns per event",
        pattern.0 - validate.0,
        reference.0 - validate.0,
        any_of.0 - validate.0
    );
    Ok(())
}
