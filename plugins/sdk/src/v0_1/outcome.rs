//! What a 0.1 enricher returns per event: [`Enriched`] (validators return
//! the same [`Verdict`](crate::Verdict) as in 0.2).

use super::Event;

/// An enricher's result for one event (WIT variant `enriched`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enriched {
    /// Pass the event on as it came in (cheapest: nothing is copied back).
    Unchanged,
    /// Replace the event with this one. `event_id` and `team_id` must not
    /// change (the host refuses such results).
    Changed(Event),
    /// The plugin could not process this event; the plugin's failure policy
    /// (configured on the host) decides what happens to it.
    Failed(String),
}

impl Enriched {
    /// Pass the event on as it came in.
    pub fn unchanged() -> Self {
        Self::Unchanged
    }

    /// Replace the event with `event`.
    pub fn changed(event: Event) -> Self {
        Self::Changed(event)
    }

    /// The event could not be processed, because of `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors() {
        assert_eq!(Enriched::unchanged(), Enriched::Unchanged);
        assert_eq!(Enriched::failed("x"), Enriched::Failed("x".to_owned()));
        let event = Event::new("e");
        assert_eq!(Enriched::changed(event.clone()), Enriched::Changed(event));
    }
}
