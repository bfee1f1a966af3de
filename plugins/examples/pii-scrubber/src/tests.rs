//! Unit tests, and a randomized comparison with the previous implementation.

use super::*;
use sluice_plugin_sdk::{Value, json};

fn found(text: &str) -> Vec<&str> {
    find_pii(text).into_iter().map(|r| &text[r]).collect()
}

fn scrubber(config: Value) -> PiiScrubber {
    PiiScrubber::init(&config.to_string()).unwrap()
}

fn event(properties: Value, context: Option<Value>) -> Event {
    Event {
        event_id: "e1".into(),
        team_id: "t1".into(),
        properties: properties.to_string(),
        context: context.map(|c| c.to_string()),
        ..Event::new("Signed Up")
    }
}

fn changed(result: Enriched) -> Event {
    match result {
        Enriched::Changed(event) => event,
        other => panic!("expected changed, got {other:?}"),
    }
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
    let out = changed(plugin.scrub_event(input));
    let props = out.properties_json().unwrap();
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
    assert_eq!((out.event_id.as_str(), out.team_id.as_str()), ("e1", "t1"));
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
    let out = changed(plugin.scrub_event(input));
    assert_eq!(
        out.properties_json().unwrap(),
        *json!({"tags": ["a"], "deep": {"k": 1}})
            .as_object()
            .unwrap()
    );
    assert_eq!(
        out.context_json().unwrap(),
        *json!({"user_agent": "UA"}).as_object().unwrap()
    );
}

#[test]
fn context_ip_and_extra_fields_are_scrubbed_whole() {
    let plugin = scrubber(json!({"salt": "s", "fields": ["phone", "address"]}));
    let input = event(
        json!({"phone": "+1 555 0100", "profile": {"address": {"city": "Oslo"}}, "n": 1}),
        Some(json!({"ip": "10.9.8.7", "locale": "en"})),
    );
    let out = changed(plugin.scrub_event(input));
    let props = out.properties_json().unwrap();
    assert_eq!(props["phone"], json!(plugin.hash("+1 555 0100")));
    assert_eq!(
        props["profile"]["address"],
        json!(plugin.hash(r#"{"city":"Oslo"}"#))
    );
    assert_eq!(
        out.context_json().unwrap()["ip"],
        json!(plugin.hash("10.9.8.7"))
    );
    assert_eq!(out.context_json().unwrap()["locale"], json!("en"));
}

#[test]
fn nothing_found_is_unchanged_and_scrubbing_is_idempotent() {
    let plugin = scrubber(json!({"salt": "s", "fields": ["phone"]}));
    let clean = event(
        json!({"plan": "pro", "version": "1.2.3", "at": "12:30:45"}),
        Some(json!({"locale": "en"})),
    );
    assert_eq!(plugin.scrub_event(clean), Enriched::Unchanged);

    let dirty = event(
        json!({"email": "a@b.io", "phone": "123"}),
        Some(json!({"ip": "10.0.0.1"})),
    );
    let once = changed(plugin.scrub_event(dirty));
    assert_eq!(plugin.scrub_event(once), Enriched::Unchanged);
}

#[test]
fn escaped_text_is_still_found() {
    let plugin = scrubber(json!({"salt": "s"}));
    let input = Event {
        properties: r#"{"e": "a\u0040b.io"}"#.to_owned(),
        ..Event::new("x")
    };
    let out = changed(plugin.scrub_event(input));
    assert_eq!(out.property("e"), Some(json!(plugin.hash("a@b.io"))));
}

#[test]
fn broken_properties_fail_the_event() {
    let plugin = scrubber(json!({"salt": "s"}));
    let input = Event {
        properties: "{\"e\": \"a@b.io\"".to_owned(),
        ..Event::new("x")
    };
    assert!(matches!(plugin.scrub_event(input), Enriched::Failed(_)));
}

#[test]
fn enrich_returns_one_result_per_event() {
    let plugin = scrubber(json!({"salt": "s"}));
    let results = plugin.enrich(vec![
        event(json!({"a": 1}), None),
        event(json!({"e": "x@y.io"}), None),
    ]);
    assert_eq!(results.len(), 2);
    assert_eq!(results[0], Enriched::Unchanged);
    assert!(matches!(results[1], Enriched::Changed(_)));
}

/// Deterministic pseudo-random numbers for the comparison below.
struct Random(u64);

impl Random {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as usize % n
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
                    // Distinct keys: with repeats the old code kept only the last.
                    if keys.contains(&key)
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

#[test]
fn same_results_as_parsing_and_reserialising() {
    let plugins = [
        scrubber(json!({"salt": "s"})),
        scrubber(json!({"salt": "s", "fields": ["phone", "address"]})),
        scrubber(json!({"mode": "drop"})),
        scrubber(json!({"mode": "drop", "fields": ["phone", "address", "tags"]})),
    ];
    let mut random = Random(7);
    let (mut changed, mut unchanged) = (0, 0);
    for _ in 0..4000 {
        let mut properties = random.value(4);
        if !properties.starts_with('{') {
            properties = format!(r#"{{"v": {properties}}}"#);
        }
        let context = match random.below(4) {
            0 => None,
            1 => Some(format!(r#"{{"locale": "en", "ip": {}}}"#, random.value(1))),
            2 => Some(format!(r#"{{ "ip" : {} , "n": [1]}}"#, random.value(0))),
            _ => Some(r#"{"locale": "en"}"#.to_owned()),
        };
        let event = Event {
            properties,
            context,
            ..Event::new("x")
        };
        for plugin in &plugins {
            let ours = plugin.scrub_event(event.clone());
            let theirs = reference::Reference(plugin).scrub_event(event.clone());
            let text = format!("{event:?}\n{ours:?}\n{theirs:?}");
            match (&ours, &theirs) {
                (Enriched::Unchanged, Enriched::Unchanged) => unchanged += 1,
                (Enriched::Changed(ours), Enriched::Changed(theirs)) => {
                    changed += 1;
                    let parse = |t: &str| serde_json::from_str::<Value>(t).expect(&text);
                    assert_eq!(parse(&ours.properties), parse(&theirs.properties), "{text}");
                    assert_eq!(
                        ours.context.as_deref().map(parse),
                        theirs.context.as_deref().map(parse),
                        "{text}"
                    );
                    // Scrubbing twice changes nothing.
                    assert_eq!(
                        plugin.scrub_event(ours.clone()),
                        Enriched::Unchanged,
                        "{text}"
                    );
                }
                _ => panic!("different outcomes:\n{text}"),
            }
        }
    }
    assert!(
        changed > 1000 && unchanged > 1000,
        "{changed} changed, {unchanged} unchanged"
    );
}

#[test]
fn replacements_are_spliced_into_the_original_text() {
    let plugin = scrubber(json!({"salt": "s", "fields": ["phone"]}));
    let input = Event {
        properties: "{ \"z\": 1.50,\n  \"note\": \"mail a@b.io or 10.0.0.7\", \"phone\": [1, 2], \"a\": {} }".to_owned(),
        context: Some(r#"{"locale": "en", "ip": "10.9.8.7", "x": 1e3}"#.to_owned()),
        ..Event::new("x")
    };
    let out = changed(plugin.scrub_event(input));
    assert_eq!(
        out.properties,
        format!(
            "{{ \"z\": 1.50,\n  \"note\": \"mail {} or {}\", \"phone\": \"{}\", \"a\": {{}} }}",
            plugin.hash("a@b.io"),
            plugin.hash("10.0.0.7"),
            plugin.hash("[1,2]")
        )
    );
    assert_eq!(
        out.context.unwrap(),
        format!(
            r#"{{"locale": "en", "ip": "{}", "x": 1e3}}"#,
            plugin.hash("10.9.8.7")
        )
    );
}

#[test]
fn drop_mode_removes_with_one_comma() {
    let plugin = scrubber(json!({"mode": "drop"}));
    for (input, expected) in [
        (r#"{"a": "x@y.io"}"#, r#"{}"#),
        (r#"{"a": "x@y.io", "b": 1}"#, r#"{"b": 1}"#),
        (r#"{"b": 1, "a": "x@y.io"}"#, r#"{"b": 1}"#),
        (
            r#"{"a": "x@y.io", "c": "10.0.0.1", "b": 1, "d": "x@y.io", "e": 2, "f": "x@y.io"}"#,
            r#"{"b": 1, "e": 2}"#,
        ),
        (
            r#"{ "l" : [ "x@y.io" , "10.0.0.1" ] }"#,
            r#"{ "l" : [  ] }"#,
        ),
        (r#"{"l": [1, "x@y.io", 2, "x@y.io"]}"#, r#"{"l": [1, 2]}"#),
    ] {
        let event = Event {
            properties: input.to_owned(),
            ..Event::new("x")
        };
        assert_eq!(
            changed(plugin.scrub_event(event)).properties,
            expected,
            "{input}"
        );
    }
}

#[test]
fn invalid_text_without_anything_to_scrub_is_unchanged() {
    let plugin = scrubber(json!({"salt": "s"}));
    let event = Event {
        properties: r#"{"plan": "pro""#.to_owned(),
        context: Some(r#"{"locale": "#.to_owned()),
        ..Event::new("x")
    };
    assert_eq!(plugin.scrub_event(event.clone()), Enriched::Unchanged);
    let context_with_ip = Event {
        context: Some(r#"{"ip": "10.0.0.1""#.to_owned()),
        ..event
    };
    assert!(matches!(
        plugin.scrub_event(context_with_ip),
        Enriched::Failed(_)
    ));
}

#[test]
fn the_quick_look_never_misses_an_address() {
    let plugin = scrubber(json!({"salt": "s"}));
    let mut random = Random(11);
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
