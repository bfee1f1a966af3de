//! Validator: rejects events that lack required properties.
//!
//! Configuration: event name → property names, `"*"` for every event:
//! `{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}`.
//! A property is missing when it is absent or `null`. A rejection has code
//! `missing_property` and names every missing property.

use std::collections::BTreeMap;

use sluice_plugin_sdk::{
    Event, PluginError, Validator, Value, Verdict, export_validator, parse_config,
};

/// The plugin: event name (or `*`) → required top-level property names.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequiredProperties {
    required: BTreeMap<String, Vec<String>>,
}

impl Validator for RequiredProperties {
    fn init(config: &str) -> Result<Self, PluginError> {
        let plugin: Self = parse_config(config)?;
        if plugin.required.values().flatten().any(String::is_empty) {
            return Err(PluginError::invalid_config(
                "property names must not be empty",
            ));
        }
        Ok(plugin)
    }

    fn validate(&self, events: Vec<Event>) -> Vec<Verdict> {
        events.iter().map(|event| self.check(event)).collect()
    }
}

impl RequiredProperties {
    fn check(&self, event: &Event) -> Verdict {
        let mut required = [event.name.as_str(), "*"]
            .into_iter()
            .filter_map(|key| self.required.get(key))
            .flatten()
            .peekable();
        if required.peek().is_none() {
            return Verdict::accept(); // nothing required: no need to parse
        }
        let Ok(properties) = event.properties_json() else {
            return Verdict::reject("invalid_properties", "properties are not a JSON object");
        };
        let mut missing: Vec<String> = Vec::new();
        for name in required.filter(|name| properties.get(*name).is_none_or(Value::is_null)) {
            let quoted = format!("`{name}`");
            if !missing.contains(&quoted) {
                missing.push(quoted);
            }
        }
        if missing.is_empty() {
            return Verdict::accept();
        }
        let noun = if missing.len() == 1 {
            "property"
        } else {
            "properties"
        };
        let message = format!(
            "event `{}` is missing required {noun} {}",
            event.name,
            missing.join(", ")
        );
        Verdict::reject("missing_property", message)
    }
}

export_validator!(RequiredProperties);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::json;

    const CONFIG: &str = r#"{"required": {"Signed Up": ["plan", "email"], "*": ["app_version"]}}"#;

    fn event(name: &str, properties: sluice_plugin_sdk::Value) -> Event {
        Event {
            properties: properties.to_string(),
            ..Event::new(name)
        }
    }

    fn validate(events: Vec<Event>) -> Vec<Verdict> {
        RequiredProperties::init(CONFIG).unwrap().validate(events)
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
        let broken = Event {
            properties: "not json".to_owned(),
            ..Event::new("Anything")
        };
        assert_eq!(plugin.validate(vec![broken]), vec![Verdict::accept()]);
    }

    #[test]
    fn unparseable_properties_are_rejected_when_something_is_required() {
        let broken = Event {
            properties: "[]".to_owned(),
            ..Event::new("Page Viewed")
        };
        assert_eq!(
            validate(vec![broken])[0].reject_code(),
            Some("invalid_properties")
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
