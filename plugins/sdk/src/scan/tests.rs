//! Tests of the scanner, several against `serde_json`.

use super::*;

fn keys(text: &str) -> Result<Vec<String>, Error> {
    members(text)
        .map(|m| m.map(|m| m.key.decode().into_owned()))
        .collect()
}

/// Whatever the scanner says about validity, serde_json agrees.
fn agrees_with_serde(text: &str) {
    let ours = value(text).is_ok();
    let serde = serde_json::from_str::<serde_json::Value>(text).is_ok();
    assert_eq!(ours, serde, "validity of {text:?}");
    if text.trim_start().starts_with('{') {
        assert_eq!(keys(text).is_ok(), serde, "members of {text:?}");
    }
}

#[test]
fn top_level_members_with_spans() {
    let text = r#" { "a" : 1 , "b":{"a":2,"c":[1,{"a":3}]}, "c": "x" } "#;
    let found: Vec<_> = members(text).map(Result::unwrap).collect();
    let names: Vec<_> = found.iter().map(|m| m.key.raw()).collect();
    assert_eq!(names, ["a", "b", "c"]);
    assert_eq!(&text[found[0].value.span()], "1");
    assert_eq!(found[0].value.kind(), Kind::Number);
    assert_eq!(&text[found[0].span()], r#""a" : 1"#);
    assert_eq!(&text[found[1].value.span()], r#"{"a":2,"c":[1,{"a":3}]}"#);
    assert_eq!(found[1].value.kind(), Kind::Object);
    assert_eq!(found[2].value.text(), r#""x""#);
    assert_eq!(found[2].value.as_str().unwrap().decode(), "x");
}

#[test]
fn keys_inside_nested_values_or_strings_do_not_match_top_level_lookups() {
    let text = r#"{"outer": {"user_agent": "nested"}, "s": "\"user_agent\": \"fake\"", "l": [{"user_agent": 1}]}"#;
    assert_eq!(find_member(text, "user_agent"), Ok(None));
    let outer = find_member(text, "outer").unwrap().unwrap();
    assert_eq!(outer.kind(), Kind::Object);
    let nested: Vec<_> = outer.members().map(Result::unwrap).collect();
    assert_eq!(nested.len(), 1);
    assert_eq!(nested[0].key.raw(), "user_agent");
    // Nested spans stay relative to the whole document.
    assert_eq!(&text[nested[0].value.span()], r#""nested""#);
}

#[test]
fn strings_with_braces_quotes_and_escapes() {
    let text = r#"{"a": "}{][,:", "b\"c": "q\"uo\\te\\", "d": "\/\b\f\n\r\t", "e": 1}"#;
    assert_eq!(keys(text).unwrap(), ["a", "b\"c", "d", "e"]);
    let b = find_member(text, "b\"c")
        .unwrap()
        .unwrap()
        .as_str()
        .unwrap();
    assert!(b.has_escapes());
    assert_eq!(b.decode(), "q\"uo\\te\\");
    let d = find_member(text, "d").unwrap().unwrap().as_str().unwrap();
    assert_eq!(d.decode(), "/\u{8}\u{c}\n\r\t");
    assert_eq!(
        find_member(text, "e").unwrap().unwrap().kind(),
        Kind::Number
    );
}

#[test]
fn unicode_escapes_decode_and_compare() {
    let text = r#"{"user\u005fagent": "Google\u0062ot \u00e9\u20AC\ud83d\ude00", "plain": "é€😀"}"#;
    let ua = find_member(text, "user_agent").unwrap().unwrap();
    let s = ua.as_str().unwrap();
    assert_eq!(s.decode(), "Googlebot é€😀");
    assert!(s.eq_str("Googlebot é€😀"));
    assert!(!s.eq_str("Googlebot é€"));
    assert!(!s.eq_str("Googlebot é€😀!"));
    let plain = find_member(text, "plain")
        .unwrap()
        .unwrap()
        .as_str()
        .unwrap();
    assert!(!plain.has_escapes());
    assert!(matches!(plain.decode(), Cow::Borrowed("é€😀")));
}

#[test]
fn last_duplicate_wins_like_serde_json() {
    let text = r#"{"k": 1, "x": 0, "k": null}"#;
    assert!(find_member(text, "k").unwrap().unwrap().is_null());
    let serde: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap();
    assert!(serde["k"].is_null());
}

#[test]
fn elements_of_arrays() {
    let text = r#"[1, "two", [3], {"four": 4}, null, true, -0.5e+3]"#;
    let kinds: Vec<_> = elements(text).map(|v| v.unwrap().kind()).collect();
    assert_eq!(
        kinds,
        [
            Kind::Number,
            Kind::String,
            Kind::Array,
            Kind::Object,
            Kind::Null,
            Kind::Bool,
            Kind::Number
        ]
    );
    assert_eq!(elements("[]").count(), 0);
    assert!(elements("{}").next().unwrap().is_err());
    assert!(members("[]").next().unwrap().is_err());
}

#[test]
fn errors_end_the_iteration() {
    let mut it = members(r#"{"a": 1, "b" 2, "c": 3}"#);
    assert!(it.next().unwrap().is_ok());
    let e = it.next().unwrap().unwrap_err();
    assert_eq!(e.what, "expected ':'");
    assert_eq!(e.offset, 13);
    assert!(it.next().is_none());
}

#[test]
fn empty_objects_and_whitespace() {
    assert_eq!(keys("{}").unwrap(), Vec::<String>::new());
    assert_eq!(keys(" \n{ \t}\r\n").unwrap(), Vec::<String>::new());
    assert_eq!(find_member("{}", "a"), Ok(None));
}

#[test]
fn long_strings_cross_word_boundaries() {
    // Quotes, escapes and control characters at every position modulo 8.
    for pad in 0..20 {
        let filler = "x".repeat(pad);
        let text = format!(r#"{{"k{filler}": "{filler}\"{filler}\\{filler}", "z": 1}}"#);
        let k = format!("k{filler}");
        let v = find_member(&text, &k).unwrap().unwrap();
        assert_eq!(
            v.as_str().unwrap().decode(),
            format!("{filler}\"{filler}\\{filler}")
        );
        assert_eq!(keys(&text).unwrap().len(), 2);
        let bad = format!("{{\"k\": \"{filler}\u{1}\"}}");
        assert!(find_member(&bad, "k").is_err(), "{bad:?}");
        let unterminated = format!("{{\"k\": \"{filler}");
        assert!(find_member(&unterminated, "k").is_err());
    }
}

#[test]
fn validity_matches_serde_json() {
    for text in [
        "{}",
        "[]",
        r#"{"a":1}"#,
        r#"{"a":1,}"#,
        r#"{"a":1 "b":2}"#,
        r#"{,"a":1}"#,
        r#"{"a"}"#,
        r#"{"a":}"#,
        r#"{a:1}"#,
        r#"{"a":1}}"#,
        r#"{"a":1} x"#,
        r#"{"a":1"#,
        r#"{"a":[1,2}"#,
        r#"{"a":{"b":[1,2]}}"#,
        r#"{"a":[1,2,]}"#,
        r#"{"a":01}"#,
        r#"{"a":-}"#,
        r#"{"a":1.}"#,
        r#"{"a":.5}"#,
        r#"{"a":1e}"#,
        r#"{"a":1e+}"#,
        r#"{"a":-0.0e-0}"#,
        r#"{"a":+1}"#,
        r#"{"a":tru}"#,
        r#"{"a":true}"#,
        r#"{"a":nul}"#,
        r#"{"a":NaN}"#,
        r#"{"a":"\x"}"#,
        r#"{"a":"\u12"}"#,
        r#"{"a":"\u12G4"}"#,
        r#"{"a":"\ud800"}"#,
        r#"{"a":"\udc00"}"#,
        r#"{"a":"\ud800\u0041"}"#,
        r#"{"a":"\ud800\udc00"}"#,
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"\u{7f}\"}",
        r#"{"a":"\""}"#,
        r#"{"a":"\\"}"#,
        r#"{"a":"\\\"}"#,
        r#"{"\\":1}"#,
        r#""just a string""#,
        "12",
        "",
        "   ",
        "{",
        "[[[]]]",
        "[[[]]",
        "[1,[2,{\"k\":[3]}],4]",
        "[1,[2,{\"k\":[3]]],4]",
    ] {
        agrees_with_serde(text);
    }
}

#[test]
fn depth_is_limited_like_serde_json() {
    for n in [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1] {
        let nested = format!("{}{}", "[".repeat(n), "]".repeat(n));
        agrees_with_serde(&nested);
        agrees_with_serde(&format!(r#"{{"a":{nested}}}"#));
        agrees_with_serde(&format!(r#"{{"a":{{"b":{nested}}}}}"#));
    }
    let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
    assert_eq!(value(&deep).unwrap_err().what, "nesting too deep");
    // Descending with `members` keeps counting.
    let inner = format!("{}{}", "[".repeat(MAX_DEPTH - 1), "]".repeat(MAX_DEPTH - 1));
    let text = format!(r#"{{"a":{{"b":{inner}}}}}"#);
    let a = find_member(&text, "a");
    assert_eq!(a.unwrap_err().what, "nesting too deep");
    let text = format!(r#"{{"a":{{"b":1}}, "c": {inner}}}"#);
    assert!(find_member(&text, "a").is_ok());
    let a = find_member(&text, "a").unwrap().unwrap();
    assert!(a.members().all(|m| m.is_ok()));
}

/// Random edits of JSON documents: the scanner and serde_json agree on
/// validity, on the top-level members and on every string's value.
#[test]
fn mutations_agree_with_serde_json() {
    const SEEDS: &[&str] = &[
        r#"{"a": "x\"y", "b": [1, -2.5e3, {"c": null}], "d\u0041": "\ud83d\ude00\n", "e": true}"#,
        r#"{"k": {"k": {"k": []}}, "s": "}{", "n": 0.1}"#,
        r#"[{"a": 1}, "b", [[], {}], false]"#,
    ];
    const ALPHABET: &[u8] = br#"{}[]:,"\ u0123456789abcdefnrtlsE.-+ "#;
    let mut state: u64 = 0x5eed;
    let mut random = |n: usize| {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as usize % n
    };
    for _ in 0..20_000 {
        let mut bytes = SEEDS[random(SEEDS.len())].as_bytes().to_vec();
        for _ in 0..=random(3) {
            let at = random(bytes.len() + 1);
            let b = ALPHABET[random(ALPHABET.len())];
            match random(3) {
                0 if at < bytes.len() => bytes[at] = b,
                1 if at < bytes.len() => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, b),
            }
        }
        let Ok(text) = String::from_utf8(bytes) else {
            continue;
        };
        agrees_with_serde(&text);
        let Ok(serde_json::Value::Object(map)) = serde_json::from_str(&text) else {
            continue;
        };
        for (key, expected) in &map {
            let found = find_member(&text, key).unwrap().unwrap();
            let parsed: serde_json::Value = serde_json::from_str(found.text()).unwrap();
            assert_eq!(&parsed, expected, "{text}");
            if let Some(s) = found.as_str() {
                assert_eq!(Some(&*s.decode()), expected.as_str(), "{text}");
                assert!(s.eq_str(expected.as_str().unwrap()));
            }
        }
        assert!(keys(&text).unwrap().len() >= map.len());
    }
}

#[test]
fn push_string_escapes_like_serde_json() {
    let mut every: String = (0u8..0x80).map(char::from).collect();
    every.push_str("é€😀 \u{7f} / \\ \"");
    for text in [every.as_str(), "", "plain", "\"", "a\\b", "\u{1f}x\u{0}"] {
        let mut ours = String::from("prefix");
        push_string(&mut ours, text);
        assert_eq!(ours, format!("prefix{}", serde_json::Value::from(text)));
        let v = value(&ours["prefix".len()..]).unwrap();
        assert_eq!(v.as_str().unwrap().decode(), text);
    }
}

#[test]
fn may_contain_key_is_never_wrong_when_it_says_no() {
    let text = r#"{"a": {"$user_agent": 1}, "b": "$user_agent", "c": "x\"$user_agent\"y"}"#;
    assert!(may_contain_key(text, "$user_agent")); // nested: a maybe
    assert!(!may_contain_key(
        r#"{"a": {"user_agent": 1}, "b": "$user_agentx"}"#,
        "$user_agent"
    ));
    assert!(!may_contain_key(r#"{"a": "$user_agent"#, "$user_agent"));
    assert!(may_contain_key(r#"{"$user_agent": 1}"#, "$user_agent"));
    assert!(may_contain_key(r#"{"\u0024user_agent": 1}"#, "$user_agent"));
    assert!(!may_contain_key("", "k"));
    for pad in 0..12 {
        let filler = "x".repeat(pad);
        let text = format!(r#"{{"{filler}": 1, "k": 2}}"#);
        assert!(may_contain_key(&text, "k"), "{text}");
        assert!(!may_contain_key(&text, "j"), "{text}");
        assert!(find_member(&text, "k").unwrap().is_some());
    }
}

#[test]
fn may_contain_key_with_other_keys() {
    for (text, key, expected) in [
        (r#"{"user_agent": 1}"#, "user_agent", true),
        (
            r#"{"user_agents": 1, "x_user_agent": 2}"#,
            "user_agent",
            false,
        ),
        (r#"{"ip": 1}"#, "ip", true),
        (r#"{"zip": "ip"}"#, "ip", true), // a string, but "ip" is written out
        (r#"{"zip": 1}"#, "ip", false),
        (r#"{"a_b": 1}"#, "_b", false),
        (r#"{"_b": 1}"#, "_b", true),
        (r#"{"": 1}"#, "", true),
        (r#"{"a": 1}"#, "", false),
        (r#"{"a\\b": 1}"#, "a\\b", true),
        (r#"{"a\"b": 1}"#, "a\"b", true),
        (r#"{"ab": 1}"#, "a\"b", false),
    ] {
        assert_eq!(may_contain_key(text, key), expected, "{text} {key}");
    }
}

#[test]
fn count_bytes_counts_exactly() {
    for len in 0..40 {
        let text: String = "a.b:@..:\u{80}é".chars().cycle().take(len).collect();
        let expected = [b'.', b':', b'@', 0xC3].map(|t| text.bytes().filter(|&b| b == t).count());
        assert_eq!(
            count_bytes(&text, [b'.', b':', b'@', 0xC3]),
            expected,
            "{text:?}"
        );
    }
}

#[test]
fn find_any_byte_finds_the_first() {
    for len in 0..30 {
        let text: String = "abcdefgh".chars().cycle().take(len).collect();
        for from in 0..=len {
            let expected = text
                .bytes()
                .enumerate()
                .skip(from)
                .find(|&(_, b)| b == b'c' || b == b'h')
                .map(|(i, _)| i);
            assert_eq!(
                find_any_byte(&text, from, [b'c', b'h']),
                expected,
                "{text} {from}"
            );
        }
    }
    assert_eq!(find_any_byte("abc", 10, [b'a']), None);
}

#[test]
fn value_reports_kind_and_span() {
    let v = value("  \"a\\nb\" ").unwrap();
    assert_eq!(v.kind(), Kind::String);
    assert_eq!(v.span(), 2..8);
    assert_eq!(v.as_str().unwrap().decode(), "a\nb");
    assert_eq!(value("-12.5e3").unwrap().kind(), Kind::Number);
    assert_eq!(value("false").unwrap().kind(), Kind::Bool);
    assert!(value("1 2").is_err());
}
