//! Validator: rejects events that lack required properties.
//!
//! Configuration: event name → property names, `"*"` for every event:
//! `{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}`.
//! A property is missing when it is absent or `null`. A rejection has code
//! `missing_property` and names every missing property.

use std::collections::BTreeMap;

use sluice_plugin_sdk::{
    Event, Fields, PluginError, Validator, Verdict, export_validator, parse_config, scan,
};

/// The configuration.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Event name (or `*`) → required top-level property names.
    required: BTreeMap<String, Vec<String>>,
}

/// The plugin: what each event must have, worked out once at `init`.
#[derive(Debug)]
pub struct RequiredProperties {
    /// Configured event name → its names followed by the `*` ones.
    per_event: BTreeMap<String, Required>,
    /// Every other event: the `*` names.
    wildcard: Required,
}

/// The property names one event needs, without repeats, in message order.
#[derive(Debug, Default)]
struct Required {
    names: Vec<String>,
    /// Bit `n` (`n` < 63) set when some name is `n` bytes long, bit 63 for
    /// longer ones: most keys fail this test and are not compared at all.
    lengths: u64,
}

impl Required {
    fn new<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        let mut required = Self::default();
        for name in names {
            if !required.names.contains(name) {
                required.lengths |= length_bit(name.len());
                required.names.push(name.clone());
            }
        }
        required
    }
}

fn length_bit(len: usize) -> u64 {
    1 << len.min(63)
}

impl Validator for RequiredProperties {
    const FIELDS: Fields = Fields::PROPERTIES;

    fn init(config: &str) -> Result<Self, PluginError> {
        let Config { required } = parse_config(config)?;
        if required.values().flatten().any(String::is_empty) {
            return Err(PluginError::invalid_config(
                "property names must not be empty",
            ));
        }
        let for_all = required.get("*").map_or(&[][..], Vec::as_slice);
        let per_event = required
            .iter()
            .filter(|(event, _)| *event != "*")
            .map(|(event, names)| (event.clone(), Required::new(names.iter().chain(for_all))))
            .collect();
        Ok(Self {
            per_event,
            wildcard: Required::new(for_all),
        })
    }

    fn validate(&self, event: &Event<'_>) -> Verdict {
        let event_name = event.name();
        let required = self.per_event.get(&*event_name).unwrap_or(&self.wildcard);
        let names = &required.names;
        if names.is_empty() {
            return Verdict::accept(); // nothing required: no need to look
        }

        // One pass over the top-level members of the raw text (no value
        // tree); the last of repeated keys counts, as when parsing. Running
        // to the end also checks that the whole text is a JSON object.
        let mut present = Present::new(names.len());
        for member in scan::members(event.properties()) {
            let Ok(member) = member else {
                return Verdict::reject("invalid_properties", "properties are not a JSON object");
            };
            // An escaped key may be longer than its name: compare it always.
            let key = member.key;
            if required.lengths & length_bit(key.raw_len()) == 0 && !key.has_escapes() {
                continue;
            }
            for (i, name) in names.iter().enumerate() {
                if key.eq_str(name) {
                    present.set(i, !member.value.is_null());
                }
            }
        }
        if (0..names.len()).all(|i| present.get(i)) {
            return Verdict::accept();
        }

        let missing: Vec<String> = names
            .iter()
            .enumerate()
            .filter(|&(i, _)| !present.get(i))
            .map(|(_, name)| format!("`{name}`"))
            .collect();
        let noun = if missing.len() == 1 {
            "property"
        } else {
            "properties"
        };
        let message = format!(
            "event `{event_name}` is missing required {noun} {}",
            missing.join(", ")
        );
        Verdict::reject("missing_property", message)
    }
}

/// Which required properties are present (and not `null`): bits, without
/// allocating, for the usual handful of names.
enum Present {
    Few(u64),
    Many(Vec<bool>),
}

impl Present {
    fn new(count: usize) -> Self {
        if count <= 64 {
            Self::Few(0)
        } else {
            Self::Many(vec![false; count])
        }
    }

    fn set(&mut self, i: usize, value: bool) {
        match self {
            Self::Few(bits) => *bits = (*bits & !(1 << i)) | (u64::from(value) << i),
            Self::Many(flags) => flags[i] = value,
        }
    }

    fn get(&self, i: usize) -> bool {
        match self {
            Self::Few(bits) => bits & (1 << i) != 0,
            Self::Many(flags) => flags[i],
        }
    }
}

export_validator!(RequiredProperties);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{Batch, EventBuf, json};

    const CONFIG: &str = r#"{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}"#;

    fn event(name: &str, properties: sluice_plugin_sdk::Value) -> EventBuf {
        EventBuf::new(name).with_properties(properties.to_string())
    }

    /// The verdicts for `events`, sent as the host sends them to this
    /// plugin (only its `FIELDS`).
    fn run(plugin: &RequiredProperties, events: Vec<EventBuf>) -> Vec<Verdict> {
        Batch::encode(&events, RequiredProperties::FIELDS).validate_with(plugin)
    }

    fn validate(events: Vec<EventBuf>) -> Vec<Verdict> {
        run(&RequiredProperties::init(CONFIG).unwrap(), events)
    }

    #[test]
    fn accepts_events_with_every_required_property() {
        let verdicts = validate(vec![
            event(
                "Signed Up",
                json!({"plan": "pro", "email": "a@b.c", "app_version": "1.2"}),
            ),
            event("Page Viewed", json!({"app_version": "1.2"})),
        ]);
        assert_eq!(verdicts, vec![Verdict::accept(), Verdict::accept()]);
    }

    #[test]
    fn rejects_a_missing_property_naming_it() {
        let verdicts = validate(vec![event(
            "Signed Up",
            json!({"plan": "pro", "app_version": "1.2"}),
        )]);
        assert_eq!(
            verdicts,
            vec![Verdict::reject(
                "missing_property",
                "event `Signed Up` is missing required property `email`"
            )]
        );
    }

    #[test]
    fn wildcard_applies_to_every_event_and_null_counts_as_missing() {
        let verdicts = validate(vec![
            event("Page Viewed", json!({"app_version": null})),
            event("Signed Up", json!({})),
        ]);
        assert_eq!(
            verdicts,
            vec![
                Verdict::reject(
                    "missing_property",
                    "event `Page Viewed` is missing required property `app_version`"
                ),
                Verdict::reject(
                    "missing_property",
                    "event `Signed Up` is missing required properties `plan`, `email`, `app_version`"
                ),
            ]
        );
    }

    #[test]
    fn no_requirement_accepts_without_parsing() {
        let plugin = RequiredProperties::init(r#"{"required": {"Other": ["x"]}}"#).unwrap();
        let broken = EventBuf::new("Anything").with_properties("not json");
        assert_eq!(run(&plugin, vec![broken]), vec![Verdict::accept()]);
    }

    #[test]
    fn unparseable_properties_are_rejected_when_something_is_required() {
        let broken = EventBuf::new("Page Viewed").with_properties("[]");
        assert_eq!(
            validate(vec![broken])[0].reject_code(),
            Some("invalid_properties")
        );
    }

    #[test]
    fn only_top_level_members_count_and_the_last_duplicate_wins() {
        let verdicts = validate(vec![
            EventBuf::new("Page Viewed")
                .with_properties(r#"{"nested": {"app_version": "1"}, "s": "\"app_version\": 1"}"#),
            EventBuf::new("Page Viewed")
                .with_properties(r#"{"app_version": "1", "app_version": null}"#),
            EventBuf::new("Page Viewed")
                .with_properties(r#"{"app_version": null, "app_version": "1"}"#),
            EventBuf::new("Page Viewed").with_properties(r#"{"app\u005fversion": 0}"#),
        ]);
        let codes: Vec<_> = verdicts.iter().map(Verdict::reject_code).collect();
        assert_eq!(
            codes,
            [
                Some("missing_property"),
                Some("missing_property"),
                None,
                None
            ]
        );
    }

    #[test]
    fn a_name_required_twice_is_named_once() {
        let plugin =
            RequiredProperties::init(r#"{"required": {"x": ["a", "b"], "*": ["a"]}}"#).unwrap();
        assert_eq!(
            run(&plugin, vec![event("x", json!({"b": false}))]),
            vec![Verdict::reject(
                "missing_property",
                "event `x` is missing required property `a`"
            )]
        );
    }

    #[test]
    fn many_required_names() {
        let names: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let config = json!({"required": {"*": names}}).to_string();
        let plugin = RequiredProperties::init(&config).unwrap();
        let mut all = sluice_plugin_sdk::JsonObject::new();
        for name in &names {
            all.insert(name.clone(), json!(1));
        }
        assert!(run(&plugin, vec![event("x", json!(all))])[0].is_accept());
        all.remove("p70");
        assert_eq!(
            run(&plugin, vec![event("x", json!(all))]),
            vec![Verdict::reject(
                "missing_property",
                "event `x` is missing required property `p70`"
            )]
        );
    }

    #[test]
    fn long_names_and_escaped_keys() {
        let long = "x".repeat(63);
        let longer = "y".repeat(70);
        let config = json!({"required": {"*": [long, longer, "ab"]}}).to_string();
        let plugin = RequiredProperties::init(&config).unwrap();
        let all = json!({long.clone(): 1, longer.clone(): 2, "ab": 3});
        assert!(run(&plugin, vec![event("x", all)])[0].is_accept());
        let escaped = EventBuf::new("x").with_properties(format!(
            r#"{{"{long}": 1, "{longer}": 2, "\u0061\u0062": 3}}"#
        ));
        assert!(run(&plugin, vec![escaped])[0].is_accept());
        let missing = json!({longer.clone(): 2, "ab": 3, "abc": 4});
        assert_eq!(
            run(&plugin, vec![event("x", missing)]),
            vec![Verdict::reject(
                "missing_property",
                format!("event `x` is missing required property `{long}`")
            )]
        );
    }

    #[test]
    fn invalid_text_after_the_required_members_is_still_rejected() {
        for broken in [
            r#"{"app_version": 1,}"#,
            r#"{"app_version": 1} x"#,
            r#"{"app_version": 1"#,
        ] {
            let event = EventBuf::new("Page Viewed").with_properties(broken);
            assert_eq!(
                validate(vec![event])[0].reject_code(),
                Some("invalid_properties"),
                "{broken}"
            );
        }
    }

    #[test]
    fn escaped_names_are_decoded_for_the_lookup_and_the_message() {
        let plugin =
            RequiredProperties::init(r#"{"required": {"Sig\"ned\" \u00e9": ["plan"]}}"#).unwrap();
        assert_eq!(
            run(&plugin, vec![event("Sig\"ned\" \u{e9}", json!({}))]),
            vec![Verdict::reject(
                "missing_property",
                "event `Sig\"ned\" \u{e9}` is missing required property `plan`"
            )]
        );
    }

    #[test]
    fn bad_configs_are_invalid_config() {
        for config in [
            "{}",
            r#"{"requried": {}}"#,
            r#"{"required": {"x": "plan"}}"#,
            r#"{"required": {"x": [""]}}"#,
            "nope",
        ] {
            assert!(
                matches!(
                    RequiredProperties::init(config),
                    Err(PluginError::InvalidConfig(_))
                ),
                "{config}"
            );
        }
    }

    #[test]
    fn one_verdict_per_event() {
        assert!(validate(Vec::new()).is_empty());
        assert_eq!(
            validate(vec![event("x", json!({"app_version": 1})); 5]).len(),
            5
        );
    }
}
