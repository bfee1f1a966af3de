//! [`Event`]: one analytics event, as the 0.1 gateway hands it to plugins.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::JsonObject;

/// One analytics event (the WIT record `sluice:plugin/types.event@0.1.0`).
///
/// Owned and plain: plugins may move, clone and rebuild it freely. The JSON
/// members are kept as the text the gateway sent; parse them with
/// [`properties_json`](Self::properties_json) /
/// [`context_json`](Self::context_json) (once per event: each call parses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// UUID of the event, kept across client retries. Enrichers must not change it.
    pub event_id: String,
    /// The team that sent it (from its API key). Enrichers must not change it.
    pub team_id: String,
    /// Event name, e.g. `Button Clicked`.
    pub name: String,
    /// The user the event belongs to.
    pub user_id: String,
    /// Client event time, milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    /// Gateway receive time, milliseconds since the Unix epoch (UTC).
    pub received_at_ms: i64,
    /// Version of the team's schema for this event name.
    pub schema_version: u32,
    /// The event's properties: the text of a JSON object.
    pub properties: String,
    /// Device/library context: the text of a JSON object, if any.
    pub context: Option<String>,
}

impl Default for Event {
    /// An event with empty strings, zero times, `{}` properties and no context.
    fn default() -> Self {
        Self {
            event_id: String::new(),
            team_id: String::new(),
            name: String::new(),
            user_id: String::new(),
            timestamp_ms: 0,
            received_at_ms: 0,
            schema_version: 0,
            properties: "{}".to_owned(),
            context: None,
        }
    }
}

impl Event {
    /// An event called `name` with `{}` properties and defaults elsewhere:
    /// handy in unit tests together with [`with_property`](Self::with_property)
    /// and [`with_context`](Self::with_context).
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Parses [`properties`](Self::properties) as a JSON object.
    ///
    /// # Errors
    /// When the text is not a JSON object (the gateway only forwards objects,
    /// so this indicates a host bug or a hand-built event).
    pub fn properties_json(&self) -> Result<JsonObject, serde_json::Error> {
        serde_json::from_str(&self.properties)
    }

    /// Deserializes [`properties`](Self::properties) into `T` (typed access).
    ///
    /// # Errors
    /// When the text does not fit `T`.
    pub fn properties_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.properties)
    }

    /// Parses [`context`](Self::context) as a JSON object; an absent context
    /// is an empty object.
    ///
    /// # Errors
    /// When the text is not a JSON object.
    pub fn context_json(&self) -> Result<JsonObject, serde_json::Error> {
        match &self.context {
            Some(text) => serde_json::from_str(text),
            None => Ok(JsonObject::new()),
        }
    }

    /// One top-level property, `None` when absent or when the properties do
    /// not parse. Parses the whole object on every call: to read several
    /// properties, call [`properties_json`](Self::properties_json) once.
    pub fn property(&self, key: &str) -> Option<Value> {
        self.properties_json().ok()?.remove(key)
    }

    /// Replaces [`properties`](Self::properties) with the text of `properties`.
    pub fn set_properties_json(&mut self, properties: &JsonObject) {
        self.properties = object_text(properties);
    }

    /// Replaces [`context`](Self::context) with the text of `context`.
    pub fn set_context_json(&mut self, context: &JsonObject) {
        self.context = Some(object_text(context));
    }

    /// Sets one top-level property (adding or replacing it) and returns the
    /// event: the usual way for an enricher to build [`Enriched::changed`].
    ///
    /// # Errors
    /// When the current properties are not a JSON object.
    ///
    /// [`Enriched::changed`]: super::Enriched::changed
    pub fn with_property(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, serde_json::Error> {
        let mut properties = self.properties_json()?;
        properties.insert(key.into(), value.into());
        self.set_properties_json(&properties);
        Ok(self)
    }

    /// Sets one top-level context member (creating the context if absent)
    /// and returns the event.
    ///
    /// # Errors
    /// When the current context is not a JSON object.
    pub fn with_context(
        mut self,
        key: impl Into<String>,
        value: impl Into<Value>,
    ) -> Result<Self, serde_json::Error> {
        let mut context = self.context_json()?;
        context.insert(key.into(), value.into());
        self.set_context_json(&context);
        Ok(self)
    }
}

fn object_text(object: &JsonObject) -> String {
    // Serializing a `Map<String, Value>` cannot fail: keys are strings and
    // every `Value` is representable.
    Value::Object(object.clone()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn new_event_has_empty_object_properties_and_no_context() {
        let event = Event::new("Signed Up");
        assert_eq!(event.name, "Signed Up");
        assert_eq!(event.properties_json().unwrap(), JsonObject::new());
        assert_eq!(event.context_json().unwrap(), JsonObject::new());
        assert_eq!(event.property("plan"), None);
    }

    #[test]
    fn with_property_and_with_context_round_trip() {
        let event = Event::new("Signed Up")
            .with_property("plan", "pro")
            .unwrap()
            .with_property("seats", 3)
            .unwrap()
            .with_context("ip", "10.0.0.1")
            .unwrap();
        assert_eq!(event.property("plan"), Some(json!("pro")));
        assert_eq!(event.property("seats"), Some(json!(3)));
        assert_eq!(event.context_json().unwrap()["ip"], json!("10.0.0.1"));
    }

    #[test]
    fn properties_that_are_not_an_object_are_an_error() {
        let event = Event {
            properties: "[1, 2]".to_owned(),
            ..Event::default()
        };
        assert!(event.properties_json().is_err());
        assert!(event.clone().with_property("a", 1).is_err());
        assert_eq!(event.property("a"), None);
    }

    #[test]
    fn typed_access() {
        #[derive(serde::Deserialize)]
        struct Props {
            plan: String,
        }
        let event = Event::new("x").with_property("plan", "team").unwrap();
        assert_eq!(event.properties_as::<Props>().unwrap().plan, "team");
    }
}
