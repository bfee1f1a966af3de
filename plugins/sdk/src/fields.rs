//! [`Fields`]: what a plugin reads of each event (WIT flags `fields`).
//!
//! The host sends a plugin only the members it declared, so a plugin that
//! reads only the properties is not handed (and does not pay to copy) the
//! context. `event_id` and `name` are always sent.

use std::fmt;
use std::ops::{BitOr, BitOrAssign};

/// A set of event fields besides `event_id` and `name` (which are always
/// sent). Declared once per plugin type as [`Validator::FIELDS`] /
/// [`Enricher::FIELDS`]; combine with [`union`](Self::union) (usable in a
/// `const`) or `|`.
///
/// ```
/// use sluice_plugin_sdk::Fields;
///
/// const FIELDS: Fields = Fields::PROPERTIES.union(Fields::CONTEXT);
/// assert!(FIELDS.contains(Fields::CONTEXT));
/// assert!(!FIELDS.contains(Fields::USER_ID));
/// assert_eq!(FIELDS, Fields::CONTEXT | Fields::PROPERTIES);
/// ```
///
/// [`Validator::FIELDS`]: crate::Validator::FIELDS
/// [`Enricher::FIELDS`]: crate::Enricher::FIELDS
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Fields(u8);

impl Fields {
    /// Nothing besides `event_id` and `name`.
    pub const NONE: Self = Self(0);
    /// `user_id`.
    pub const USER_ID: Self = Self(1);
    /// `timestamp_ms` and `received_at_ms`.
    pub const TIMES: Self = Self(1 << 1);
    /// `schema_version`.
    pub const SCHEMA_VERSION: Self = Self(1 << 2);
    /// `properties`.
    pub const PROPERTIES: Self = Self(1 << 3);
    /// `context` (absent from an event that has none).
    pub const CONTEXT: Self = Self(1 << 4);
    /// Every field.
    pub const ALL: Self = Self(0b1_1111);

    const NAMES: [(Self, &'static str); 5] = [
        (Self::USER_ID, "USER_ID"),
        (Self::TIMES, "TIMES"),
        (Self::SCHEMA_VERSION, "SCHEMA_VERSION"),
        (Self::PROPERTIES, "PROPERTIES"),
        (Self::CONTEXT, "CONTEXT"),
    ];

    /// The fields of both sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every field of `other` is in this set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The bits, in the order of the WIT flags (`user-id` is bit 0).
    pub const fn bits(self) -> u8 {
        self.0
    }
}

impl BitOr for Fields {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        self.union(other)
    }
}

impl BitOrAssign for Fields {
    fn bitor_assign(&mut self, other: Self) {
        *self = self.union(other);
    }
}

impl fmt::Debug for Fields {
    /// `Fields(PROPERTIES | CONTEXT)`, `Fields(NONE)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Fields(")?;
        let mut first = true;
        for (field, name) in Self::NAMES {
            if self.contains(field) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        if first {
            f.write_str("NONE")?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_and_debug() {
        let both = Fields::PROPERTIES | Fields::CONTEXT;
        assert!(both.contains(Fields::PROPERTIES) && both.contains(Fields::CONTEXT));
        assert!(!both.contains(Fields::TIMES));
        assert!(Fields::ALL.contains(both) && both.contains(Fields::NONE));
        assert_eq!(format!("{both:?}"), "Fields(PROPERTIES | CONTEXT)");
        assert_eq!(format!("{:?}", Fields::NONE), "Fields(NONE)");
        let mut all = Fields::NONE;
        for (field, _) in Fields::NAMES {
            all |= field;
        }
        assert_eq!(all, Fields::ALL);
        // The WIT flags' order: user-id, times, schema-version, properties, context.
        assert_eq!(
            [
                Fields::USER_ID,
                Fields::TIMES,
                Fields::SCHEMA_VERSION,
                Fields::PROPERTIES,
                Fields::CONTEXT
            ]
            .map(Fields::bits),
            [1, 2, 4, 8, 16]
        );
    }
}
