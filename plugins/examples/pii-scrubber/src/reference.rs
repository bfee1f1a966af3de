//! The plugin's previous implementations, kept to check the current one
//! against: [`Reference`] (parse into a `serde_json` tree, scrub,
//! re-serialise) and [`Spliced`] (the 0.1 plugin: scan, splice the
//! replacements into the whole text, return the whole event).

use super::*;
use sluice_plugin_sdk::Value;

/// What an 0.1 plugin returned for an event: whole properties and context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Old {
    Unchanged,
    Changed {
        properties: String,
        context: Option<String>,
    },
    Failed(String),
}

/// The event's properties and context, as the 0.1 plugins saw them.
#[derive(Debug, Clone)]
pub struct OldEvent {
    pub properties: String,
    pub context: Option<String>,
}

pub struct Reference<'a>(pub &'a PiiScrubber);

impl Reference<'_> {
    pub fn scrub_event(&self, event: &OldEvent) -> Old {
        let mut event = event.clone();
        let mut changed = false;

        if self.may_contain_pii(&event.properties) {
            let mut properties: Value = match serde_json::from_str(&event.properties) {
                Ok(value) => value,
                Err(e) => return Old::Failed(format!("properties are not JSON: {e}")),
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
                Err(e) => return Old::Failed(format!("context is not JSON: {e}")),
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
            Old::Changed {
                properties: event.properties,
                context: event.context,
            }
        } else {
            Old::Unchanged
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

/// The 0.1 plugin: the same scrubbing as now, spliced into the whole text.
pub struct Spliced<'a>(pub &'a PiiScrubber);

impl Spliced<'_> {
    pub fn scrub_event(&self, event: &OldEvent) -> Old {
        let properties = match self.scrub_properties(&event.properties) {
            Ok(properties) => properties,
            Err(e) => return Old::Failed(format!("properties are not JSON: {e}")),
        };
        let context = match event.context.as_deref().map(|c| self.scrub_context(c)) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(context))) => Some(context),
            Some(Err(e)) => return Old::Failed(format!("context is not JSON: {e}")),
        };
        if properties.is_none() && context.is_none() {
            return Old::Unchanged;
        }
        Old::Changed {
            properties: properties.unwrap_or_else(|| event.properties.clone()),
            context: context.or_else(|| event.context.clone()),
        }
    }

    /// The scrubbed properties text, `None` when nothing changed.
    pub fn scrub_properties(&self, text: &str) -> Result<Option<String>, scan::Error> {
        let plugin = self.0;
        if !plugin.may_contain_pii(text) {
            return Ok(None);
        }
        let mut out = Rewriter::within(text, 0..text.len());
        let scrubbed = match text.trim_start().as_bytes().first() {
            Some(b'{') => plugin.scrub_object(scan::members(text), &mut out),
            Some(b'[') => plugin.scrub_array(scan::elements(text), &mut out),
            _ => scan::value(text).and_then(|value| plugin.scrub_value(value, &mut out)),
        };
        match scrubbed {
            Ok(_) => Ok(out.finish()),
            Err(_) if !plugin.looks_like_pii(text) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The context with its top-level `ip` scrubbed, `None` when nothing
    /// changed.
    pub fn scrub_context(&self, text: &str) -> Result<Option<String>, scan::Error> {
        let mut out = Rewriter::within(text, 0..text.len());
        match self.0.scrub_context_members(scan::members(text), &mut out) {
            Ok(_) => Ok(out.finish()),
            Err(_) if scan::value(text).is_ok() => Ok(None),
            Err(_) if !text.contains("\"ip\"") && !text.contains('\\') => Ok(None),
            Err(e) => Err(e),
        }
    }
}
