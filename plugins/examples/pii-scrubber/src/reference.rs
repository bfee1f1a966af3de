//! The plugin's previous implementation (parse into a `serde_json` tree,
//! scrub, re-serialise), kept to check the scanning one against.

use super::*;
use sluice_plugin_sdk::Value;

pub struct Reference<'a>(pub &'a PiiScrubber);

impl Reference<'_> {
    pub fn scrub_event(&self, mut event: Event) -> Enriched {
        let mut changed = false;

        if self.may_contain_pii(&event.properties) {
            let mut properties: Value = match serde_json::from_str(&event.properties) {
                Ok(value) => value,
                Err(e) => return Enriched::failed(format!("properties are not JSON: {e}")),
            };
            if self.scrub_value(&mut properties) != Outcome::Kept {
                event.properties = properties.to_string();
                changed = true;
            }
        }

        if let Some(context) = &event.context
            && (context.contains("\"ip\"") || context.contains('\\'))
        {
            let mut context: Value = match serde_json::from_str(context) {
                Ok(value) => value,
                Err(e) => return Enriched::failed(format!("context is not JSON: {e}")),
            };
            if let Some(object) = context.as_object_mut()
                && let Some(ip) = object.get_mut("ip")
            {
                let outcome = self.scrub_whole(ip);
                if outcome == Outcome::Remove {
                    object.remove("ip");
                }
                if outcome != Outcome::Kept {
                    event.context = Some(context.to_string());
                    changed = true;
                }
            }
        }

        if changed {
            Enriched::changed(event)
        } else {
            Enriched::unchanged()
        }
    }

    /// Cheap pre-check on the raw JSON text: `false` guarantees that parsing
    /// and scanning would find nothing. (Escapes could hide an `@` or split
    /// an address, so any backslash means "look closer".)
    fn may_contain_pii(&self, raw: &str) -> bool {
        raw.contains('@')
            || raw.contains('\\')
            || !find_ips(raw).is_empty()
            || self
                .0
                .fields
                .iter()
                .any(|field| raw.contains(&format!("\"{field}\"")))
    }

    fn scrub_value(&self, value: &mut Value) -> Outcome {
        match value {
            Value::String(text) => {
                let found = find_pii(text);
                if found.is_empty() {
                    Outcome::Kept
                } else if self.0.mode == Mode::Drop {
                    Outcome::Remove
                } else {
                    *text = self.0.hash_spans(text, &found);
                    Outcome::Changed
                }
            }
            Value::Array(items) => {
                let mut outcome = Outcome::Kept;
                items.retain_mut(|item| match self.scrub_value(item) {
                    Outcome::Kept => true,
                    Outcome::Changed => {
                        outcome = Outcome::Changed;
                        true
                    }
                    Outcome::Remove => {
                        outcome = Outcome::Changed;
                        false
                    }
                });
                outcome
            }
            Value::Object(members) => {
                let mut outcome = Outcome::Kept;
                members.retain(|key, member| {
                    let member_outcome = if self.0.fields.iter().any(|f| f == key) {
                        self.scrub_whole(member)
                    } else {
                        self.scrub_value(member)
                    };
                    match member_outcome {
                        Outcome::Kept => true,
                        Outcome::Changed => {
                            outcome = Outcome::Changed;
                            true
                        }
                        Outcome::Remove => {
                            outcome = Outcome::Changed;
                            false
                        }
                    }
                });
                outcome
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => Outcome::Kept,
        }
    }

    /// A value that is personal as a whole (`fields`, `context.ip`).
    fn scrub_whole(&self, value: &mut Value) -> Outcome {
        match value {
            Value::Null => Outcome::Kept,
            Value::String(text) if text.starts_with(HASH_PREFIX) => Outcome::Kept,
            _ if self.0.mode == Mode::Drop => Outcome::Remove,
            Value::String(text) => {
                *text = self.0.hash(text);
                Outcome::Changed
            }
            other => {
                *other = Value::String(self.0.hash(&other.to_string()));
                Outcome::Changed
            }
        }
    }
}
