//! [`Patch`]: what an enricher changed in one event, sent to the host as a
//! JSON merge patch (RFC 7396) instead of the whole event.
//!
//! An enricher that hashes one property returns a few dozen bytes, and the
//! host re-checks and re-serialises only what the patch touches. The
//! builder writes members in a fixed order and each key once (setting a
//! member again replaces the earlier value), so the text is always a valid
//! patch of the members an enricher may change: `name`, `user_id`,
//! `timestamp_ms`, members of `properties`, members of `context` or the
//! whole `context`.
//!
//! Merge-patch semantics to keep in mind: a member set to an *object* is
//! merged into the event's object of that name, recursively (members of it
//! that the patch does not name are kept); `null` removes. To replace a
//! nested object outright, remove its members (or set the member to a
//! non-object).

use std::fmt;

use serde_json::Value;

use crate::scan;

/// A JSON merge patch over one event, built member by member:
///
/// ```
/// use sluice_plugin_sdk::Patch;
///
/// let mut patch = Patch::new();
/// patch
///     .remove_property("email")
///     .set_property("email_hash", "sha256:ab")
///     .set_property_raw("cart", r#"{"items":3}"#)
///     .set_context_member("ip", "sha256:cd");
/// assert_eq!(
///     patch.to_json(),
///     r#"{"properties":{"email":null,"email_hash":"sha256:ab","cart":{"items":3}},"context":{"ip":"sha256:cd"}}"#
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patch {
    /// Set by [`Patch::raw`]: the whole patch text, sent as is.
    raw: Option<String>,
    /// JSON texts.
    name: Option<String>,
    user_id: Option<String>,
    timestamp_ms: Option<i64>,
    properties: Members,
    context: Context,
}

/// Object members: decoded key, JSON value text (`None`: `null`, remove).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Members(Vec<(String, Option<String>)>);

impl Members {
    fn set(&mut self, key: &str, value: Option<String>) {
        match self.0.iter_mut().find(|(k, _)| k == key) {
            Some(member) => member.1 = value,
            None => self.0.push((key.to_owned(), value)),
        }
    }

    fn write(&self, out: &mut String) {
        out.push('{');
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            scan::push_string(out, key);
            out.push(':');
            out.push_str(value.as_deref().unwrap_or("null"));
        }
        out.push('}');
    }

    fn len(&self) -> usize {
        self.0
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(4, String::len) + 4)
            .sum()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Context {
    #[default]
    Untouched,
    Remove,
    Members(Members),
}

impl Patch {
    /// An empty patch (`{}`): changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// A patch given as its JSON text, sent as is: the host checks it (and
    /// fails the event when it is not a valid patch of what an enricher may
    /// change). For patches built some other way, and for testing hosts.
    ///
    /// Such a patch cannot be extended: the setters panic on it.
    pub fn raw(text: impl Into<String>) -> Self {
        Self {
            raw: Some(text.into()),
            ..Self::default()
        }
    }

    /// Whether the patch changes nothing (a [`raw`](Self::raw) patch never
    /// counts as empty). Return [`Enriched::Unchanged`] rather than an empty
    /// patch: the host then has nothing to apply.
    ///
    /// [`Enriched::Unchanged`]: crate::Enriched::Unchanged
    pub fn is_empty(&self) -> bool {
        self.raw.is_none()
            && self.name.is_none()
            && self.user_id.is_none()
            && self.timestamp_ms.is_none()
            && self.properties.0.is_empty()
            && self.context == Context::Untouched
    }

    /// Renames the event.
    pub fn set_name(&mut self, name: &str) -> &mut Self {
        self.built().name = Some(json_string(name));
        self
    }

    /// Sets the user the event belongs to.
    pub fn set_user_id(&mut self, user_id: &str) -> &mut Self {
        self.built().user_id = Some(json_string(user_id));
        self
    }

    /// Sets the client event time (milliseconds since the Unix epoch, UTC).
    pub fn set_timestamp_ms(&mut self, timestamp_ms: i64) -> &mut Self {
        self.built().timestamp_ms = Some(timestamp_ms);
        self
    }

    /// Sets the top-level property `key` to `value` (an object value is
    /// merged into an existing object; see the module docs).
    pub fn set_property(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.built()
            .properties
            .set(key, Some(value.into().to_string()));
        self
    }

    /// Sets the top-level property `key` to the JSON value `json`, as it is:
    /// the fast way to pass on text sliced from the event. Not checked here
    /// (the host refuses a patch that is not valid JSON).
    pub fn set_property_raw(&mut self, key: &str, json: impl Into<String>) -> &mut Self {
        self.built().properties.set(key, Some(json.into()));
        self
    }

    /// Removes the top-level property `key` (`"key": null`).
    pub fn remove_property(&mut self, key: &str) -> &mut Self {
        self.built().properties.set(key, None);
        self
    }

    /// Sets the top-level context member `key` (creating the context if the
    /// event has none). Cancels an earlier [`remove_context`](Self::remove_context).
    pub fn set_context_member(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.context_members()
            .set(key, Some(value.into().to_string()));
        self
    }

    /// Sets the top-level context member `key` to the JSON value `json`, as
    /// it is (not checked here).
    pub fn set_context_member_raw(&mut self, key: &str, json: impl Into<String>) -> &mut Self {
        self.context_members().set(key, Some(json.into()));
        self
    }

    /// Removes the top-level context member `key`.
    pub fn remove_context_member(&mut self, key: &str) -> &mut Self {
        self.context_members().set(key, None);
        self
    }

    /// Removes the whole context (`"context": null`), dropping the context
    /// members set so far.
    pub fn remove_context(&mut self) -> &mut Self {
        self.built().context = Context::Remove;
        self
    }

    /// The patch's JSON text.
    pub fn to_json(&self) -> String {
        if let Some(raw) = &self.raw {
            return raw.clone();
        }
        let capacity = 64
            + self.name.as_ref().map_or(0, String::len)
            + self.user_id.as_ref().map_or(0, String::len)
            + self.properties.len()
            + match &self.context {
                Context::Members(members) => members.len(),
                _ => 0,
            };
        let mut out = String::with_capacity(capacity);
        out.push('{');
        let key = |out: &mut String, key: &str| {
            if out.len() > 1 {
                out.push(',');
            }
            out.push('"');
            out.push_str(key);
            out.push_str("\":");
        };
        if let Some(name) = &self.name {
            key(&mut out, "name");
            out.push_str(name);
        }
        if let Some(user_id) = &self.user_id {
            key(&mut out, "user_id");
            out.push_str(user_id);
        }
        if let Some(timestamp_ms) = self.timestamp_ms {
            key(&mut out, "timestamp_ms");
            out.push_str(&timestamp_ms.to_string());
        }
        if !self.properties.0.is_empty() {
            key(&mut out, "properties");
            self.properties.write(&mut out);
        }
        match &self.context {
            Context::Untouched => {}
            Context::Remove => {
                key(&mut out, "context");
                out.push_str("null");
            }
            Context::Members(members) => {
                key(&mut out, "context");
                members.write(&mut out);
            }
        }
        out.push('}');
        out
    }

    /// The patch's JSON text (without a copy for a [`raw`](Self::raw) patch).
    pub fn into_json(self) -> String {
        match self.raw {
            Some(raw) => raw,
            None => self.to_json(),
        }
    }

    fn built(&mut self) -> &mut Self {
        assert!(
            self.raw.is_none(),
            "sluice plugin: a raw `Patch` cannot be extended"
        );
        self
    }

    fn context_members(&mut self) -> &mut Members {
        let context = &mut self.built().context;
        if !matches!(context, Context::Members(_)) {
            *context = Context::Members(Members::default());
        }
        match context {
            Context::Members(members) => members,
            Context::Untouched | Context::Remove => unreachable!("set just above"),
        }
    }
}

impl fmt::Display for Patch {
    /// The JSON text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_json())
    }
}

fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    scan::push_string(&mut out, value);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_empty_patch_is_an_empty_object() {
        let patch = Patch::new();
        assert!(patch.is_empty());
        assert_eq!(patch.to_json(), "{}");
        assert_eq!(patch.to_string(), "{}");
    }

    #[test]
    fn every_member_in_a_fixed_order() {
        let mut patch = Patch::new();
        patch
            .remove_context()
            .set_property("n", 1.5)
            .set_timestamp_ms(-1)
            .set_user_id("u\"2")
            .set_name("Account Created");
        assert!(!patch.is_empty());
        assert_eq!(
            patch.to_json(),
            r#"{"name":"Account Created","user_id":"u\"2","timestamp_ms":-1,"properties":{"n":1.5},"context":null}"#
        );
        let parsed: Value = serde_json::from_str(&patch.into_json()).unwrap();
        assert_eq!(parsed["user_id"], json!("u\"2"));
    }

    #[test]
    fn a_member_set_again_is_replaced_in_place() {
        let mut patch = Patch::new();
        patch
            .set_property("a", 1)
            .set_property_raw("b\n", "[1, 2]")
            .remove_property("a")
            .set_property("b\n", json!({"x": null}));
        assert_eq!(
            patch.to_json(),
            r#"{"properties":{"a":null,"b\n":{"x":null}}}"#
        );
    }

    #[test]
    fn context_members_and_removal() {
        let mut patch = Patch::new();
        patch
            .set_context_member("ip", "x")
            .remove_context_member("locale")
            .set_context_member_raw("n", "1e3");
        assert_eq!(
            patch.to_json(),
            r#"{"context":{"ip":"x","locale":null,"n":1e3}}"#
        );
        patch.remove_context();
        assert_eq!(patch.to_json(), r#"{"context":null}"#);
        patch.set_context_member("ip", "y");
        assert_eq!(patch.to_json(), r#"{"context":{"ip":"y"}}"#);
    }

    #[test]
    fn raw_patches_are_sent_as_they_are() {
        let patch = Patch::raw(r#"{"event_id":"x"}"#);
        assert!(!patch.is_empty());
        assert_eq!(patch.to_json(), r#"{"event_id":"x"}"#);
        assert!(!Patch::raw("{}").is_empty());
        assert_eq!(Patch::raw("not json").into_json(), "not json");
    }

    #[test]
    #[should_panic(expected = "a raw `Patch` cannot be extended")]
    fn raw_patches_cannot_be_extended() {
        Patch::raw("{}").set_name("x");
    }
}
