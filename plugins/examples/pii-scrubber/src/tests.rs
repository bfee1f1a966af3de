//! Unit tests, and randomized comparisons with the previous
//! implementations (the 0.1 plugin, and the one that parsed into a tree).

use super::*;
use reference::{Old, OldEvent, Reference, Spliced};
use sluice_plugin_sdk::{Batch, EventBuf, Value, json};

fn found(text: &str) -> Vec<&str> {
    find_pii(text).into_iter().map(|r| &text[r]).collect()
}

fn scrubber(config: Value) -> PiiScrubber {
    PiiScrubber::init(&config.to_string()).unwrap()
}

fn event(properties: Value, context: Option<Value>) -> EventBuf {
    let event = EventBuf::new("Signed Up")
        .with_event_id("e1")
        .with_properties(properties.to_string());
    with_context(event, context.map(|c| c.to_string()))
}

fn raw(properties: &str, context: Option<&str>) -> EventBuf {
    with_context(EventBuf::new("x").with_properties(properties), context)
}

fn with_context(event: EventBuf, context: Option<impl Into<String>>) -> EventBuf {
    match context {
        Some(context) => event.with_context(context),
        None => event.without_context(),
    }
}

/// The result for one event, sent as the host sends it to this plugin
/// (only its `FIELDS`).
fn scrub(plugin: &PiiScrubber, event: &EventBuf) -> Enriched {
    let mut results = Batch::encode([event], PiiScrubber::FIELDS).enrich_with(plugin);
    assert_eq!(results.len(), 1);
    results.remove(0)
}

/// `event` as the host makes it of `result`, which must be a patch.
fn changed(event: &EventBuf, result: Enriched) -> EventBuf {
    match result {
        Enriched::Patched(patch) => apply(event, &patch),
        other => panic!("expected a patch, got {other:?}"),
    }
}

/// `event` with `patch` applied (RFC 7396), as JSON values: what the host
/// makes of it, compared as values (keys of the result sorted).
fn apply(event: &EventBuf, patch: &Patch) -> EventBuf {
    let text = patch.to_json();
    let patch: Value = serde_json::from_str(&text).expect(&text);
    let view = event.event();
    let mut properties: Value = serde_json::from_str(view.properties()).expect("properties");
    let mut context: Option<Value> = view
        .context()
        .map(|c| serde_json::from_str(c).expect("context"));
    for (key, value) in patch.as_object().expect("a patch is an object") {
        match key.as_str() {
            "properties" => {
                assert!(value.is_object(), "{text}");
                merge(&mut properties, value);
            }
            "context" if value.is_null() => context = None,
            "context" => merge(context.get_or_insert_with(|| json!({})), value),
            other => panic!("the scrubber may not patch `{other}`: {text}"),
        }
    }
    let event = event.clone().with_properties(properties.to_string());
    with_context(event, context.map(|c| c.to_string()))
}

/// RFC 7396 `MergePatch(target, patch)`.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Value::Object(object) = target else {
        unreachable!()
    };
    for (key, value) in patch {
        if value.is_null() {
            object.remove(key);
        } else {
            merge(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

fn old(event: &EventBuf) -> OldEvent {
    let view = event.event();
    OldEvent {
        properties: view.properties().to_owned(),
        context: view.context().map(str::to_owned),
    }
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).expect(text)
}

/// The properties and context of an event, as JSON values.
fn values(event: &EventBuf) -> (Value, Option<Value>) {
    let view = event.event();
    (parse(view.properties()), view.context().map(parse))
}

#[test]
fn finds_emails() {
    assert_eq!(found("a@b.co"), ["a@b.co"]);
    assert_eq!(
        found("Mail jane.doe+x@mail.example.com, or bob@ex-ample.org."),
        ["jane.doe+x@mail.example.com", "bob@ex-ample.org"]
    );
    assert_eq!(found("<.x@y.io>"), ["x@y.io"]);
    for none in [
        "@",
        "a@b",
        "a@b.c",
        "a@-b.com",
        "a@b..com",
        "@b.com",
        "a@b.c0m",
        "x @ y.com",
    ] {
        assert!(found(none).is_empty(), "{none}");
    }
}

#[test]
fn finds_ipv4() {
    assert_eq!(found("10.0.0.1"), ["10.0.0.1"]);
    assert_eq!(
        found("from 192.168.1.20, then 8.8.8.8."),
        ["192.168.1.20", "8.8.8.8"]
    );
    assert_eq!(found("[203.0.113.9]:443"), ["203.0.113.9"]);
    assert_eq!(found("peer=198.51.100.4:8080"), ["198.51.100.4"]);
    for none in [
        "1.2.3",
        "v1.2.3.4",
        "1.2.3.4.5",
        "256.1.1.1",
        "0.0.0.0",
        "127.0.0.1",
        "1.2.3.4x",
        "01.2.3.4",
    ] {
        assert!(found(none).is_empty(), "{none}");
    }
}

#[test]
fn finds_ipv6() {
    assert_eq!(found("2001:db8::1"), ["2001:db8::1"]);
    assert_eq!(
        found("[2001:db8:0:0:1:0:0:1]:443"),
        ["2001:db8:0:0:1:0:0:1"]
    );
    assert_eq!(
        found("peer fe80::1ff:fe23:4567:890a."),
        ["fe80::1ff:fe23:4567:890a"]
    );
    assert_eq!(found("mapped ::ffff:10.1.2.3"), ["::ffff:10.1.2.3"]);
    for none in [
        "::",
        "::1",
        "12:30:45",
        "aa:bb:cc:dd:ee:ff",
        "Foo::bar",
        "std::fs",
        "sha256:abcdef0123",
    ] {
        assert!(found(none).is_empty(), "{none}");
    }
}

#[test]
fn emails_win_over_ips_inside_them() {
    assert_eq!(found("x@10.0.0.1"), ["10.0.0.1"]);
    assert_eq!(found("a@b.io 10.0.0.1"), ["a@b.io", "10.0.0.1"]);
}

#[test]
fn hash_mode_replaces_addresses_recursively_and_keeps_other_text() {
    let plugin = scrubber(json!({"salt": "s3"}));
    let input = event(
        json!({
            "email": "jane@example.com",
            "note": "call 10.0.0.7 now",
            "nested": {"list": ["ok", "2001:db8::5", 3]},
            "plan": "pro"
        }),
        None,
    );
    let result = scrub(&plugin, &input);
    assert!(
        matches!(&result, Enriched::Patched(p) if p.to_json().starts_with(r#"{"properties":{"#)),
        "{result:?}"
    );
    let out = changed(&input, result);
    let props = out.event().properties_json().unwrap();
    assert_eq!(props["email"], json!(plugin.hash("jane@example.com")));
    assert_eq!(
        props["note"],
        json!(format!("call {} now", plugin.hash("10.0.0.7")))
    );
    assert_eq!(
        props["nested"],
        json!({"list": ["ok", plugin.hash("2001:db8::5"), 3]})
    );
    assert_eq!(props["plan"], json!("pro"));
    assert_eq!(out.event().event_id(), "e1");
}

#[test]
fn hash_is_salted_sha256_hex() {
    let plugin = scrubber(json!({"salt": "pepper"}));
    // sha256("pepper" + "a@b.io")
    let expected = {
        let digest = Sha256::digest(b"peppera@b.io");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        format!("sha256:{hex}")
    };
    assert_eq!(plugin.hash("a@b.io"), expected);
    assert_eq!(plugin.hash("a@b.io").len(), 7 + 64);
    assert_ne!(
        plugin.hash("a@b.io"),
        scrubber(json!({"salt": "salt"})).hash("a@b.io")
    );
}

#[test]
fn drop_mode_removes_members_and_elements() {
    let plugin = scrubber(json!({"mode": "drop"}));
    let input = event(
        json!({"email": "jane@example.com", "tags": ["a", "from 10.0.0.7"], "deep": {"ip": "10.1.1.1", "k": 1}}),
        Some(json!({"ip": "203.0.113.1", "user_agent": "UA"})),
    );
    let result = scrub(&plugin, &input);
    // The nested object is patched (a merge), not replaced.
    assert!(
        matches!(&result, Enriched::Patched(p) if p.to_json().contains(r#""deep":{"ip":null}"#)),
        "{result:?}"
    );
    let out = changed(&input, result);
    assert_eq!(
        values(&out),
        (
            json!({"tags": ["a"], "deep": {"k": 1}}),
            Some(json!({"user_agent": "UA"}))
        )
    );
}

#[test]
fn context_ip_and_extra_fields_are_scrubbed_whole() {
    let plugin = scrubber(json!({"salt": "s", "fields": ["phone", "address"]}));
    let input = event(
        json!({"phone": "+1 555 0100", "profile": {"address": {"city": "Oslo"}}, "n": 1}),
        Some(json!({"ip": "10.9.8.7", "locale": "en"})),
    );
    let out = changed(&input, scrub(&plugin, &input));
    let (props, context) = values(&out);
    assert_eq!(props["phone"], json!(plugin.hash("+1 555 0100")));
    assert_eq!(
        props["profile"]["address"],
        json!(plugin.hash(r#"{"city":"Oslo"}"#))
    );
    let context = context.unwrap();
    assert_eq!(context["ip"], json!(plugin.hash("10.9.8.7")));
    assert_eq!(context["locale"], json!("en"));
}

#[test]
fn nothing_found_is_unchanged_and_scrubbing_is_idempotent() {
    let plugin = scrubber(json!({"salt": "s", "fields": ["phone"]}));
    let clean = event(
        json!({"plan": "pro", "version": "1.2.3", "at": "12:30:45"}),
        Some(json!({"locale": "en"})),
    );
    assert_eq!(scrub(&plugin, &clean), Enriched::Unchanged);

    let dirty = event(
        json!({"email": "a@b.io", "phone": "123"}),
        Some(json!({"ip": "10.0.0.1"})),
    );
    let once = changed(&dirty, scrub(&plugin, &dirty));
    assert_eq!(scrub(&plugin, &once), Enriched::Unchanged);
}

#[test]
fn escaped_text_is_still_found() {
    let plugin = scrubber(json!({"salt": "s"}));
    let input = raw(r#"{"e": "a\u0040b.io"}"#, None);
    let out = changed(&input, scrub(&plugin, &input));
    assert_eq!(values(&out).0["e"], json!(plugin.hash("a@b.io")));
}

#[test]
fn broken_properties_fail_the_event() {
    let plugin = scrubber(json!({"salt": "s"}));
    let input = raw("{\"e\": \"a@b.io\"", None);
    assert!(matches!(scrub(&plugin, &input), Enriched::Failed(_)));
}

#[test]
fn enrich_returns_one_result_per_event() {
    let plugin = scrubber(json!({"salt": "s"}));
    let events = [
        event(json!({"a": 1}), None),
        event(json!({"e": "x@y.io"}), None),
    ];
    let results = Batch::encode(&events, PiiScrubber::FIELDS).enrich_with(&plugin);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], Enriched::Unchanged);
    assert!(matches!(results[1], Enriched::Patched(_)));
}

/// Deterministic pseudo-random numbers for the comparisons below; with
/// `repeats`, objects may repeat a key.
struct Random {
    state: u64,
    repeats: bool,
}

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.state = self
            .state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.state >> 33) as usize % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }

    fn space(&mut self) -> &'static str {
        self.pick(&["", "", " ", "\n  "])
    }

    /// A JSON value as raw text (escapes and spacing included).
    fn value(&mut self, depth: usize) -> String {
        const SCALARS: &[&str] = &[
            r#""a@b.io""#,
            r#""x \u0040y.io, z@w.org""#,
            r#""call 10.0.0.7 now""#,
            r#""2001:db8::5""#,
            r#""sha256:abc""#,
            r#""plain text""#,
            r#""q\"uote 10.0.0.9 \\ end""#,
            r#""tab\t8.8.8.8\n""#,
            r#""\u00e9 10.0.0.1 \ud83d\ude00""#,
            r#""1.2.3.4.5""#,
            r#""::ffff:10.1.2.3""#,
            r#""v1.2.3 12:30:45""#,
            r#""https://shop.example.com/p/x?y=1""#,
            r#""127.0.0.1""#,
            r#""""#,
            "1.50",
            "-0",
            "1e3",
            "12345678901234567890",
            "true",
            "null",
        ];
        const KEYS: &[&str] = &[
            r#""email""#,
            r#""phone""#,
            r#""ph\u006fne""#,
            r#""address""#,
            r#""ip""#,
            r#""note""#,
            r#""tags""#,
            r#""n""#,
        ];
        match self.below(if depth == 0 { 1 } else { 4 }) {
            0 | 1 => self.pick(SCALARS).to_owned(),
            2 => {
                let items: Vec<String> = (0..self.below(4))
                    .map(|_| format!("{}{}{}", self.space(), self.value(depth - 1), self.space()))
                    .collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let mut keys: Vec<&str> = Vec::new();
                let mut members = Vec::new();
                for _ in 0..self.below(5) {
                    let key = self.pick(KEYS);
                    // Distinct keys unless asked: with repeats the tree
                    // version kept only the last.
                    if !self.repeats && keys.contains(&key)
                        || (key.contains("ph") && keys.iter().any(|k| k.contains("ph")))
                    {
                        continue;
                    }
                    keys.push(key);
                    let value = self.value(depth - 1);
                    members.push(format!(
                        "{}{key}{}:{}{value}{}",
                        self.space(),
                        self.space(),
                        self.space(),
                        self.space()
                    ));
                }
                format!("{{{}}}", members.join(","))
            }
        }
    }
}

/// A random event's properties (an object) and context.
fn random_event(random: &mut Random) -> EventBuf {
    let mut properties = random.value(4);
    if !properties.starts_with('{') {
        properties = format!(r#"{{"v": {properties}}}"#);
    }
    let context = match random.below(5) {
        0 => None,
        1 => Some(format!(r#"{{"locale": "en", "ip": {}}}"#, random.value(1))),
        2 => Some(format!(r#"{{ "ip" : {} , "n": [1]}}"#, random.value(0))),
        3 if random.repeats => Some(format!(
            r#"{{"ip": {}, "locale": "en", "i\u0070": {}}}"#,
            random.value(0),
            random.value(0)
        )),
        _ => Some(r#"{"locale": "en"}"#.to_owned()),
    };
    raw(&properties, context.as_deref())
}

fn plugins() -> [PiiScrubber; 4] {
    [
        scrubber(json!({"salt": "s"})),
        scrubber(json!({"salt": "s", "fields": ["phone", "address"]})),
        scrubber(json!({"mode": "drop"})),
        scrubber(json!({"mode": "drop", "fields": ["phone", "address", "tags"]})),
    ]
}

/// Scrubs `event` with `plugin`; checks that the event the host makes of
/// the result is the one `previous` (an earlier implementation) made, as
/// JSON values, and that scrubbing it again changes nothing. Whether it was
/// changed (`None`: the outcomes differ, which `repeated_keys` allows).
///
/// With `repeated_keys`, the 0.1 plugin may have scrubbed (and reported) a
/// member that a later one of the same name hides, and `null` members count
/// as absent: removing a later member can uncover an earlier `null`, which
/// no merge patch can set (RFC 7396: `null` removes).
fn compare(
    plugin: &PiiScrubber,
    event: &EventBuf,
    previous: &Old,
    repeated_keys: bool,
) -> Option<bool> {
    let ours = scrub(plugin, event);
    let text = format!("{event:?}\n{ours:?}\n{previous:?}");
    let seen = |event: &EventBuf| comparable(values(event), repeated_keys);
    let old = |properties: &str, context: Option<&str>| {
        comparable((parse(properties), context.map(parse)), repeated_keys)
    };
    match (&ours, previous) {
        (Enriched::Unchanged, Old::Unchanged) => Some(false),
        (Enriched::Failed(ours), Old::Failed(theirs)) => {
            assert_eq!(ours, theirs, "{text}");
            Some(false)
        }
        (
            Enriched::Patched(patch),
            Old::Changed {
                properties,
                context,
            },
        ) => {
            let out = apply(event, patch);
            assert_eq!(seen(&out), old(properties, context.as_deref()), "{text}");
            assert_eq!(scrub(plugin, &out), Enriched::Unchanged, "twice: {text}");
            Some(true)
        }
        (
            Enriched::Unchanged,
            Old::Changed {
                properties,
                context,
            },
        ) if repeated_keys => {
            assert_eq!(seen(event), old(properties, context.as_deref()), "{text}");
            None
        }
        _ => panic!("different outcomes:\n{text}"),
    }
}

/// The values as compared: with `without_nulls`, `null` object members
/// removed (at any depth).
fn comparable(
    (properties, context): (Value, Option<Value>),
    without_nulls: bool,
) -> (Value, Option<Value>) {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(members) => {
                members.retain(|_, member| !member.is_null());
                members.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let (mut properties, mut context) = (properties, context);
    if without_nulls {
        strip(&mut properties);
        context.iter_mut().for_each(strip);
    }
    (properties, context)
}

#[test]
fn same_results_as_parsing_and_reserialising() {
    let plugins = plugins();
    let mut random = Random {
        state: 7,
        repeats: false,
    };
    let (mut changed, mut unchanged) = (0, 0);
    for _ in 0..4000 {
        let event = random_event(&mut random);
        for plugin in &plugins {
            let theirs = Reference(plugin).scrub_event(&old(&event));
            match compare(plugin, &event, &theirs, false) {
                Some(true) => changed += 1,
                _ => unchanged += 1,
            }
            // The 0.1 plugin agrees too.
            let spliced = Spliced(plugin).scrub_event(&old(&event));
            compare(plugin, &event, &spliced, false);
        }
    }
    assert!(
        changed > 1000 && unchanged > 1000,
        "{changed} changed, {unchanged} unchanged"
    );
}

#[test]
fn repeated_keys_end_as_the_0_1_plugin_left_them() {
    let plugins = plugins();
    let mut random = Random {
        state: 3,
        repeats: true,
    };
    let (mut changed, mut hidden) = (0, 0);
    for _ in 0..4000 {
        let event = random_event(&mut random);
        for plugin in &plugins {
            let spliced = Spliced(plugin).scrub_event(&old(&event));
            match compare(plugin, &event, &spliced, true) {
                Some(true) => changed += 1,
                None => hidden += 1,
                Some(false) => {}
            }
        }
    }
    assert!(
        changed > 1000 && hidden > 10,
        "{changed} changed, {hidden} hidden"
    );
}

#[test]
fn repeated_keys_are_patched_by_their_last_member() {
    let plugin = scrubber(json!({"mode": "drop"}));
    for (properties, patch) in [
        // The later member hides the scrubbed one: nothing to patch.
        (r#"{"a": "x@y.io", "a": 1}"#, None),
        // The scrubbed later member uncovers the earlier one.
        (
            r#"{"a": 1, "a": "x@y.io"}"#,
            Some(r#"{"properties":{"a":1}}"#),
        ),
        (
            r#"{"a": "x@y.io", "a": "x@y.io"}"#,
            Some(r#"{"properties":{"a":null}}"#),
        ),
        (
            r#"{"d": {"a": {"k": 1, "ip": "10.0.0.1"}, "a": {"ip": "10.0.0.2"}}}"#,
            Some(r#"{"properties":{"d":{"a":{"ip":null}}}}"#),
        ),
        (
            r#"{"ph\u006fne": 1, "a": "x@y.io", "phone": 2}"#,
            Some(r#"{"properties":{"a":null}}"#),
        ),
    ] {
        let result = scrub(&plugin, &raw(properties, None));
        match patch {
            None => assert_eq!(result, Enriched::Unchanged, "{properties}"),
            Some(patch) => assert!(
                matches!(&result, Enriched::Patched(p) if p.to_json() == patch),
                "{properties}: {result:?}"
            ),
        }
    }
}

#[test]
fn replacements_are_spliced_into_the_original_text() {
    let plugin = scrubber(json!({"salt": "s", "fields": ["phone"]}));
    let input = raw(
        "{ \"z\": 1.50,\n  \"note\": \"mail a@b.io or 10.0.0.7\", \"phone\": [1, 2], \"a\": {} }",
        Some(r#"{"locale": "en", "ip": "10.9.8.7", "x": 1e3}"#),
    );
    // Only the changed members, each as its spliced text.
    let Enriched::Patched(patch) = scrub(&plugin, &input) else {
        panic!("expected a patch");
    };
    assert_eq!(
        patch.to_json(),
        format!(
            r#"{{"properties":{{"note":"mail {} or {}","phone":"{}"}},"context":{{"ip":"{}"}}}}"#,
            plugin.hash("a@b.io"),
            plugin.hash("10.0.0.7"),
            plugin.hash("[1,2]"),
            plugin.hash("10.9.8.7")
        )
    );
    // The 0.1 plugin spliced the same texts into the whole event.
    let Old::Changed {
        properties,
        context,
    } = Spliced(&plugin).scrub_event(&old(&input))
    else {
        panic!("expected a change");
    };
    assert_eq!(
        properties,
        format!(
            "{{ \"z\": 1.50,\n  \"note\": \"mail {} or {}\", \"phone\": \"{}\", \"a\": {{}} }}",
            plugin.hash("a@b.io"),
            plugin.hash("10.0.0.7"),
            plugin.hash("[1,2]")
        )
    );
    assert_eq!(
        context.unwrap(),
        format!(
            r#"{{"locale": "en", "ip": "{}", "x": 1e3}}"#,
            plugin.hash("10.9.8.7")
        )
    );
}

#[test]
fn drop_mode_removes_with_one_comma() {
    let plugin = scrubber(json!({"mode": "drop"}));
    for (input, expected, patch) in [
        (r#"{"a": "x@y.io"}"#, r#"{}"#, r#"{"a":null}"#),
        (r#"{"a": "x@y.io", "b": 1}"#, r#"{"b": 1}"#, r#"{"a":null}"#),
        (r#"{"b": 1, "a": "x@y.io"}"#, r#"{"b": 1}"#, r#"{"a":null}"#),
        (
            r#"{"a": "x@y.io", "c": "10.0.0.1", "b": 1, "d": "x@y.io", "e": 2, "f": "x@y.io"}"#,
            r#"{"b": 1, "e": 2}"#,
            r#"{"a":null,"c":null,"d":null,"f":null}"#,
        ),
        (
            r#"{ "l" : [ "x@y.io" , "10.0.0.1" ] }"#,
            r#"{ "l" : [  ] }"#,
            r#"{"l":[  ]}"#,
        ),
        (
            r#"{"l": [1, "x@y.io", 2, "x@y.io"]}"#,
            r#"{"l": [1, 2]}"#,
            r#"{"l":[1, 2]}"#,
        ),
        (
            r#"{"l": [{"a": "x@y.io", "b": 1}]}"#,
            r#"{"l": [{"b": 1}]}"#,
            r#"{"l":[{"b": 1}]}"#,
        ),
    ] {
        // The spliced text (of the 0.1 plugin; arrays are still spliced).
        let event = raw(input, None);
        let Old::Changed { properties, .. } = Spliced(&plugin).scrub_event(&old(&event)) else {
            panic!("{input}: expected a change");
        };
        assert_eq!(properties, expected, "{input}");
        // The patch, and the event the host makes of it.
        let result = scrub(&plugin, &event);
        assert!(
            matches!(&result, Enriched::Patched(p) if p.to_json() == format!(r#"{{"properties":{patch}}}"#)),
            "{input}: {result:?}"
        );
        assert_eq!(
            values(&changed(&event, result)).0,
            parse(expected),
            "{input}"
        );
    }
}

#[test]
fn invalid_text_without_anything_to_scrub_is_unchanged() {
    let plugin = scrubber(json!({"salt": "s"}));
    let event = raw(r#"{"plan": "pro""#, Some(r#"{"locale": "#));
    assert_eq!(scrub(&plugin, &event), Enriched::Unchanged);
    let context_with_ip = event.with_context(r#"{"ip": "10.0.0.1""#);
    assert!(matches!(
        scrub(&plugin, &context_with_ip),
        Enriched::Failed(_)
    ));
}

#[test]
fn the_quick_look_never_misses_an_address() {
    let plugin = scrubber(json!({"salt": "s"}));
    let mut random = Random {
        state: 11,
        repeats: false,
    };
    const ALPHABET: &[&str] = &[
        "0", "1", "25", "9", "a", "f", "g", ":", ".", " ", "@", "x", "::",
    ];
    for _ in 0..20_000 {
        let text: String = (0..random.below(14))
            .map(|_| random.pick(ALPHABET))
            .collect();
        let raw = json!({"k": text, "n": 1.5}).to_string();
        if !find_pii(&text).is_empty() {
            assert!(plugin.may_contain_pii(&raw), "{raw}");
        }
        assert!(
            plugin.may_contain_pii(&raw) || !plugin.looks_like_pii(&raw),
            "{raw}"
        );
    }
    for clean in [
        r#"{"price":89.99,"url":"https://shop.example.com/p?x=1","v":"1.2","t":"12:30"}"#,
        r#"{ "a" : -1.5e3 , "b" : [0.1, 2.25] }"#,
    ] {
        assert!(!plugin.may_contain_pii(clean), "{clean}");
    }
}

#[test]
fn config_validation() {
    for bad in [
        json!({}),
        json!({"mode": "hash", "salt": ""}),
        json!({"mode": "shred", "salt": "s"}),
        json!({"salt": "s", "fields": [""]}),
        json!({"salt": "s", "feilds": []}),
    ] {
        assert!(
            matches!(
                PiiScrubber::init(&bad.to_string()),
                Err(PluginError::InvalidConfig(_))
            ),
            "{bad}"
        );
    }
    assert!(PiiScrubber::init(r#"{"mode": "drop"}"#).is_ok());
}
