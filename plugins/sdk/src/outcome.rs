//! What plugins return per event: [`Verdict`] (validators) and [`Enriched`]
//! (enrichers).

use crate::Patch;

/// A validator's decision about one event (WIT variant `verdict`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The event may continue.
    Accept,
    /// The event is refused; the client sees `plugin_rejected` with this reason.
    Reject {
        /// A stable, machine-readable code, e.g. `missing_property`.
        code: String,
        /// A sentence for the developer who sent the event.
        message: String,
    },
}

impl Verdict {
    /// The event may continue.
    pub fn accept() -> Self {
        Self::Accept
    }

    /// The event is refused with a stable `code` and a human `message`.
    pub fn reject(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Reject {
            code: code.into(),
            message: message.into(),
        }
    }

    /// Whether this is [`Verdict::Accept`].
    pub fn is_accept(&self) -> bool {
        matches!(self, Self::Accept)
    }

    /// The rejection code, if this is a rejection.
    pub fn reject_code(&self) -> Option<&str> {
        match self {
            Self::Accept => None,
            Self::Reject { code, .. } => Some(code),
        }
    }
}

/// An enricher's result for one event (WIT variant `enriched`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enriched {
    /// Pass the event on as it came in (nothing is copied back).
    Unchanged,
    /// Apply this patch (see [`Patch`]). The host checks the patched event
    /// like a client's.
    Patched(Patch),
    /// The plugin could not process this event; the plugin's failure policy
    /// (configured on the host) decides what happens to it.
    Failed(String),
}

impl Enriched {
    /// Pass the event on as it came in.
    pub fn unchanged() -> Self {
        Self::Unchanged
    }

    /// Apply `patch`.
    pub fn patched(patch: Patch) -> Self {
        Self::Patched(patch)
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
        assert!(Verdict::accept().is_accept());
        let rejected = Verdict::reject("missing_property", "no plan");
        assert!(!rejected.is_accept());
        assert_eq!(rejected.reject_code(), Some("missing_property"));
        assert_eq!(Enriched::unchanged(), Enriched::Unchanged);
        assert_eq!(Enriched::failed("x"), Enriched::Failed("x".to_owned()));
        let mut patch = Patch::new();
        patch.set_name("x");
        assert_eq!(Enriched::patched(patch.clone()), Enriched::Patched(patch));
    }
}
