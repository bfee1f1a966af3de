//! Compatibility between schema versions.
//!
//! Everything reduces to one question: is every instance valid under the
//! *writer* schema also valid under the *reader* schema (writer ⊆ reader)?
//! - BACKWARD: the new schema reads what the old one wrote: old ⊆ new.
//! - FORWARD: the old schema reads what the new one writes: new ⊆ old.
//! - FULL: both. `*_TRANSITIVE`: against every earlier version, not just the
//!   latest. NONE: no check.
//!
//! The checker is *sound* for the supported subset: when it says compatible,
//! the inclusion holds. It may refuse a few inclusions that happen to hold
//! (e.g. a writer's union whose members together satisfy a bound), and says
//! what it could not prove.
//!
//! ## Open vs closed content model
//! A property the writer does not name is constrained by the writer's
//! `additionalProperties`. When that is open (absent or `true`), writer data
//! may already carry the property *with any value*. So, in the open model,
//! adding a constrained property is not BACKWARD compatible (old events may
//! hold `plan: 42`), and removing one is not FORWARD compatible; in the
//! closed model (`additionalProperties: false`) the opposite holds: adding an
//! optional property is BACKWARD compatible and removing one is not. The
//! explanations say which model decided the verdict.
//!
//! A required property the writer may omit is accepted when the reader's
//! schema gives it a `default` (consumers fill it in), as in Avro.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Bound, Node, Schema, Types, escape};

mod applicators;
use crate::validate::{describe_bound, multiple_of, same};

/// Compatibility modes, named and serialised as in Confluent Schema Registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
    None,
}

impl Compatibility {
    pub const ALL: [Self; 7] = [
        Self::Backward,
        Self::BackwardTransitive,
        Self::Forward,
        Self::ForwardTransitive,
        Self::Full,
        Self::FullTransitive,
        Self::None,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backward => "BACKWARD",
            Self::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Self::Forward => "FORWARD",
            Self::ForwardTransitive => "FORWARD_TRANSITIVE",
            Self::Full => "FULL",
            Self::FullTransitive => "FULL_TRANSITIVE",
            Self::None => "NONE",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|mode| mode.as_str().eq_ignore_ascii_case(text))
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Self::BackwardTransitive | Self::ForwardTransitive | Self::FullTransitive
        )
    }

    fn directions(self) -> &'static [Direction] {
        match self {
            Self::Backward | Self::BackwardTransitive => &[Direction::Backward],
            Self::Forward | Self::ForwardTransitive => &[Direction::Forward],
            Self::Full | Self::FullTransitive => &[Direction::Backward, Direction::Forward],
            Self::None => &[],
        }
    }
}

impl fmt::Display for Compatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which schema reads the other's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The new schema must accept old events (writer = old).
    Backward,
    /// The old schema must accept new events (writer = new).
    Forward,
}

impl Direction {
    fn writer(self) -> &'static str {
        match self {
            Self::Backward => "old",
            Self::Forward => "new",
        }
    }

    fn reader(self) -> &'static str {
        match self {
            Self::Backward => "new",
            Self::Forward => "old",
        }
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incompatibility {
    /// The earlier version it was checked against.
    pub version: u32,
    pub direction: Direction,
    /// JSON Pointer into the schema, e.g. `#/properties/plan`.
    pub path: String,
    /// Stable rule name, e.g. `required_added`.
    pub rule: &'static str,
    pub message: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "against version {} ({}): {}: {} [{}]",
            self.version,
            match self.direction {
                Direction::Backward => "BACKWARD",
                Direction::Forward => "FORWARD",
            },
            self.path,
            self.message,
            self.rule
        )
    }
}

/// Checks `new` against the earlier versions (oldest first) under `mode`.
/// Empty means compatible.
pub fn check(
    mode: Compatibility,
    new: &Schema,
    earlier: &[(u32, &Schema)],
) -> Vec<Incompatibility> {
    let against: &[(u32, &Schema)] = if mode.transitive() {
        earlier
    } else {
        earlier.last().map(std::slice::from_ref).unwrap_or_default()
    };
    let mut out = Vec::new();
    for &(version, old) in against {
        for &direction in mode.directions() {
            out.extend(check_pair(direction, old, new, version));
        }
    }
    out
}

/// Checks one pair in one direction.
pub fn check_pair(
    direction: Direction,
    old: &Schema,
    new: &Schema,
    version: u32,
) -> Vec<Incompatibility> {
    let (writer, reader) = match direction {
        Direction::Backward => (old, new),
        Direction::Forward => (new, old),
    };
    let mut checker = Checker {
        direction,
        version,
        out: Vec::new(),
    };
    checker.schema(writer, reader, "#");
    checker.out
}

struct Checker {
    direction: Direction,
    version: u32,
    out: Vec<Incompatibility>,
}

impl Checker {
    fn report(&mut self, path: &str, rule: &'static str, message: String) {
        self.out.push(Incompatibility {
            version: self.version,
            direction: self.direction,
            path: path.to_owned(),
            rule,
            message,
        });
    }

    /// (old, new) from (writer, reader), for "changed from X to Y".
    fn old_new<T>(&self, writer: T, reader: T) -> (T, T) {
        match self.direction {
            Direction::Backward => (writer, reader),
            Direction::Forward => (reader, writer),
        }
    }

    fn schema(&mut self, writer: &Schema, reader: &Schema, path: &str) {
        let (Schema::Node(w), Schema::Node(r)) = (writer, reader) else {
            if let (Schema::Node(_), Schema::Never) = (writer, reader) {
                let (w, r) = (self.direction.writer(), self.direction.reader());
                self.report(
                    path,
                    "value_forbidden",
                    format!(
                        "the {r} schema allows no value here (`false`) but {w} events may have one"
                    ),
                );
            }
            return;
        };
        // Identical (sub)schemas: compatible, whatever they hold (a
        // pattern, a union, a condition).
        if w == r || r.as_ref() == &Node::default() {
            return;
        }
        if let Some(values) = &w.enumeration {
            self.enum_writer(values, writer, reader, r, path);
            return;
        }
        if w.has_applicators() {
            self.writer_applicators(w, reader, r, path);
            return;
        }
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        let missing = w.types.minus(r.types);
        if !missing.is_empty() {
            let (old, new) = self.old_new(w.types, r.types);
            self.report(
                path,
                "type_changed",
                format!(
                    "type changed from {old} to {new}: {wl} events with {} here would fail the {rl} schema",
                    with_article(missing)
                ),
            );
        }
        if r.enumeration.is_some() {
            let (old, new) = self.old_new("no enum", "an enum");
            self.report(
                path,
                "enum_restricted",
                format!(
                    "changed from {old} to {new}: {wl} events may carry values the {rl} schema's enum does not list"
                ),
            );
        }
        // Per-type keywords matter only where both accept the type; the
        // rest was reported as a type change above.
        let shared = w.types.intersection(r.types);
        if shared.intersects(Types::NUMBER) {
            self.bound(path, "minimum", w.minimum, r.minimum, true);
            self.bound(path, "maximum", w.maximum, r.maximum, false);
            self.multiple_of(path, w, r, shared);
        }
        if shared.intersects(Types::STRING) {
            self.string(w, r, path);
        }
        if shared.intersects(Types::ARRAY) {
            self.array(w, r, path);
        }
        if shared.intersects(Types::OBJECT) {
            self.object(w, r, path);
        }
        if r.has_applicators() {
            self.reader_applicators(writer, r, path);
        }
    }

    /// `minLength`, `maxLength`, `pattern` and `format`, where both accept
    /// strings.
    fn string(&mut self, w: &Node, r: &Node, path: &str) {
        let wl = self.direction.writer();
        self.count(path, "minLength", w.min_length, r.min_length, true);
        self.count(path, "maxLength", w.max_length, r.max_length, false);
        if let Some(pattern) = &r.pattern
            && w.pattern.as_ref() != Some(pattern)
        {
            let text = |p: Option<&crate::model::Pattern>| {
                p.map_or("none".to_owned(), |p| format!("{:?}", p.source()))
            };
            let (old, new) = self.old_new(text(w.pattern.as_ref()), text(Some(pattern)));
            self.report(
                &format!("{path}/pattern"),
                "pattern_changed",
                format!(
                    "`pattern` changed from {old} to {new}: {wl} strings may not match it (two different regular expressions are not compared for inclusion, so only an identical pattern, or an enum whose values match, is proven compatible)"
                ),
            );
        }
        if let Some(format) = r.format
            && w.format != Some(format)
        {
            let name = |f: Option<crate::model::Format>| {
                f.map_or("none".to_owned(), |f| format!("`{}`", f.name()))
            };
            let (old, new) = self.old_new(name(w.format), name(r.format));
            self.report(
                path,
                "format_changed",
                format!(
                    "`format` changed from {old} to {new}: {wl} events may hold strings that are not a valid `{}`",
                    format.name()
                ),
            );
        }
    }

    /// `minItems`, `maxItems`, `uniqueItems` and `items`, where both accept
    /// arrays.
    fn array(&mut self, w: &Node, r: &Node, path: &str) {
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        self.count(path, "minItems", w.min_items, r.min_items, true);
        self.count(path, "maxItems", w.max_items, r.max_items, false);
        if r.unique_items && !w.unique_items && w.max_items.is_none_or(|m| m > 1) {
            let (old, new) = self.old_new("false", "true");
            self.report(
                &format!("{path}/uniqueItems"),
                "unique_items_added",
                format!(
                    "`uniqueItems` changed from {old} to {new}: {wl} events may hold arrays with repeated items, which the {rl} schema refuses"
                ),
            );
        }
        let any = Schema::any();
        let (wi, ri) = (
            w.items.as_ref().unwrap_or(&any),
            r.items.as_ref().unwrap_or(&any),
        );
        self.schema(wi, ri, &format!("{path}/items"));
    }

    /// The writer lists its values: each must be valid for the reader.
    fn enum_writer(
        &mut self,
        values: &[serde_json::Value],
        writer: &Schema,
        reader: &Schema,
        r: &Node,
        path: &str,
    ) {
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        // Values the writer's other keywords exclude can never be written.
        for value in values.iter().filter(|v| writer.accepts(v)) {
            let Err(violation) = reader.validate(value, "value") else {
                continue;
            };
            let listed = r
                .enumeration
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|a| same(a, value)));
            if listed {
                self.report(
                    path,
                    "enum_value_invalid",
                    format!(
                        "enum value {value} of the {wl} schema fails the {rl} schema: {}",
                        violation.message
                    ),
                );
            } else {
                let change = match self.direction {
                    Direction::Backward => "removed",
                    Direction::Forward => "added",
                };
                self.report(
                    path,
                    "enum_value_removed",
                    format!(
                        "enum value {value} {change}: {wl} events with it would fail the {rl} schema"
                    ),
                );
            }
        }
    }

    /// Checks that the writer's bound is at least as tight as the reader's.
    fn bound(&mut self, path: &str, name: &str, w: Option<Bound>, r: Option<Bound>, lower: bool) {
        let Some(rb) = r else { return };
        // Every x the writer's bound admits must satisfy the reader's.
        let tight_enough = w.is_some_and(|wb| {
            (if lower {
                wb.value > rb.value
            } else {
                wb.value < rb.value
            }) || (wb.value == rb.value && (!rb.exclusive || wb.exclusive))
        });
        if !tight_enough {
            let text = |b: Option<Bound>| b.map_or("none".to_owned(), describe_bound);
            let (old, new) = self.old_new(text(w), text(r));
            let (wl, rl) = (self.direction.writer(), self.direction.reader());
            let side = if lower { "below" } else { "above" };
            self.report(
                &format!("{path}/{name}"),
                "range_narrowed",
                format!(
                    "`{name}` changed from {old} to {new}: {wl} events with numbers {side} {} would fail the {rl} schema",
                    describe_bound(rb)
                ),
            );
        }
    }

    fn count(&mut self, path: &str, name: &str, w: Option<u64>, r: Option<u64>, lower: bool) {
        let Some(rv) = r else { return };
        let ok = w.is_some_and(|wv| if lower { wv >= rv } else { wv <= rv });
        if !ok {
            let text = |v: Option<u64>| v.map_or("none".to_owned(), |v| v.to_string());
            let (old, new) = self.old_new(text(w), text(r));
            let (wl, rl) = (self.direction.writer(), self.direction.reader());
            self.report(
                &format!("{path}/{name}"),
                "range_narrowed",
                format!(
                    "`{name}` changed from {old} to {new}: {wl} events outside it would fail the {rl} schema"
                ),
            );
        }
    }

    /// `multipleOf`: every multiple of the writer's step must be one of the
    /// reader's (or the writer's numbers are integers and 1 is a multiple).
    /// Beyond about `f64::MAX × rm` the reader's quotient overflows and only
    /// an exact remainder passes (`validate::multiple_of`), so the tolerant
    /// comparison of the steps says nothing there: the writer's numbers must
    /// stay below it, or those huge numbers must be exact multiples anyway.
    fn multiple_of(&mut self, path: &str, w: &Node, r: &Node, shared: Types) {
        let Some(rm) = r.multiple_of else { return };
        let integers_only = !shared.intersects(Types::FRACTION);
        let ok = (w.multiple_of.is_some_and(|wm| multiple_of(wm, rm))
            || (integers_only && multiple_of(1.0, rm)))
            && overflow_safe(w, rm);
        if !ok {
            let text = |m: Option<f64>| m.map_or("none".to_owned(), |m| m.to_string());
            let (old, new) = self.old_new(text(w.multiple_of), text(Some(rm)));
            let (wl, rl) = (self.direction.writer(), self.direction.reader());
            self.report(
                &format!("{path}/multipleOf"),
                "multiple_of_changed",
                format!(
                    "`multipleOf` changed from {old} to {new}: {wl} events may hold numbers that are not multiples of {rm}, which the {rl} schema refuses"
                ),
            );
        }
    }

    fn object(&mut self, w: &Node, r: &Node, path: &str) {
        self.count(
            path,
            "minProperties",
            w.min_properties,
            r.min_properties,
            true,
        );
        self.count(
            path,
            "maxProperties",
            w.max_properties,
            r.max_properties,
            false,
        );
        self.dependent_required(w, r, path);
        self.pattern_properties(w, r, path);
        self.properties(w, r, path);
        self.required(w, r, path);
        self.additional_properties(w, r, path);
    }

    /// Each property either schema names, against the other's schema for it.
    fn properties(&mut self, w: &Node, r: &Node, path: &str) {
        let any = Schema::any();
        let names: BTreeSet<&String> = w.properties.keys().chain(r.properties.keys()).collect();
        for name in names {
            let here = format!("{path}/properties/{}", escape(name));
            let (w_named, r_named) = (w.properties.get(name), r.properties.get(name));
            // A name no `properties` lists is governed by the patterns it
            // matches, else by `additionalProperties`. On the writer side one
            // matching pattern's schema bounds the value (the value meets all
            // of them); on the reader side the patterns were compared above.
            let w_pattern = matching_pattern(w, name);
            let wp = w_named
                .or(w_pattern)
                .or(w.additional.as_ref())
                .unwrap_or(&any);
            let rp = match (r_named, matching_pattern(r, name)) {
                (Some(named), _) => named,
                (None, Some(_)) => &any,
                (None, None) => r.additional.as_ref().unwrap_or(&any),
            };
            if matches!(wp, Schema::Never) {
                continue;
            }
            match (w_named, r_named) {
                (Some(_), None) if matches!(rp, Schema::Never) => {
                    let message = match self.direction {
                        Direction::Backward => format!(
                            "property `{name}` removed from a closed content model (additionalProperties: false): old events carrying it would fail the new schema"
                        ),
                        Direction::Forward => format!(
                            "property `{name}` added, but the old schema is closed (additionalProperties: false): new events carrying it would fail the old schema"
                        ),
                    };
                    self.report(&here, "property_not_allowed", message);
                }
                (None, Some(_))
                    if w_pattern.is_none() && w.additional.is_none() && !rp.is_any() =>
                {
                    let message = match self.direction {
                        Direction::Backward => format!(
                            "property `{name}` added with constraints to an open content model: old events may already carry `{name}` with any value (the old schema has no additionalProperties: false)"
                        ),
                        Direction::Forward => format!(
                            "property `{name}` removed from an open content model: new events may carry `{name}` with any value, which the old schema constrains"
                        ),
                    };
                    self.report(&here, "property_open_model", message);
                }
                _ => self.schema(wp, rp, &here),
            }
        }
    }

    /// Names the reader requires and the writer does not, unless the reader
    /// gives them a default.
    fn required(&mut self, w: &Node, r: &Node, path: &str) {
        for name in r.required.difference(&w.required) {
            if r.properties
                .get(name)
                .and_then(Schema::node)
                .is_some_and(|n| n.default.is_some())
            {
                continue;
            }
            let message = match self.direction {
                Direction::Backward => format!(
                    "required property `{name}` added without a default: old events would fail"
                ),
                Direction::Forward => format!(
                    "property `{name}` is no longer required: new events without it would fail the old schema, which requires it"
                ),
            };
            self.report(&format!("{path}/required"), "required_added", message);
        }
    }

    /// Properties neither schema names.
    fn additional_properties(&mut self, w: &Node, r: &Node, path: &str) {
        let any = Schema::any();
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        let wa = w.additional.as_ref().unwrap_or(&any);
        let ra = r.additional.as_ref().unwrap_or(&any);
        let here = format!("{path}/additionalProperties");
        match (wa, ra) {
            (Schema::Never, _) => {}
            (_, Schema::Never) => {
                let (old, new) = self.old_new("open", "closed (additionalProperties: false)");
                self.report(
                    &here,
                    "content_model_closed",
                    format!(
                        "content model changed from {old} to {new}: {wl} events carrying properties the {rl} schema does not name would fail"
                    ),
                );
            }
            _ => self.schema(wa, ra, &here),
        }
    }
}

impl Checker {
    /// Every `dependentRequired` rule of the reader must already hold for
    /// the writer: the name is required there, or the writer has the same
    /// dependency.
    fn dependent_required(&mut self, w: &Node, r: &Node, path: &str) {
        for (key, names) in &r.dependent_required {
            for name in names {
                let holds = w.required.contains(name)
                    || w.dependent_required
                        .get(key)
                        .is_some_and(|deps| deps.contains(name));
                if !holds {
                    let message = match self.direction {
                        Direction::Backward => format!(
                            "`{name}` now required when `{key}` is present (dependentRequired): old events with `{key}` but without `{name}` would fail"
                        ),
                        Direction::Forward => format!(
                            "`{name}` no longer required when `{key}` is present (dependentRequired): new events without it would fail the old schema"
                        ),
                    };
                    self.report(
                        &format!("{path}/dependentRequired/{}", escape(key)),
                        "dependent_required_added",
                        message,
                    );
                }
            }
        }
    }

    /// `patternProperties`, compared by pattern text (regex inclusion is
    /// not decided): a reader pattern with constraints needs the identical
    /// writer pattern with a schema included in it; a writer pattern the
    /// reader lacks must fit the reader's `additionalProperties`.
    fn pattern_properties(&mut self, w: &Node, r: &Node, path: &str) {
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        for (pattern, rs) in &r.pattern_properties {
            if rs.is_any() {
                continue;
            }
            let here = format!("{path}/patternProperties/{}", escape(pattern.source()));
            match w.pattern_properties.iter().find(|(p, _)| p == pattern) {
                Some((_, ws)) => self.schema(ws, rs, &here),
                None => self.report(
                    &here,
                    "pattern_properties_changed",
                    format!(
                        "the {rl} schema constrains properties matching {:?} and the {wl} schema has no identical pattern: {wl} events may carry such properties with other values (regular expressions are compared only by their text, so this is decided conservatively)",
                        pattern.source()
                    ),
                ),
            }
        }
        let any = Schema::any();
        let ra = r.additional.as_ref().unwrap_or(&any);
        for (pattern, ws) in &w.pattern_properties {
            if r.pattern_properties.iter().any(|(p, _)| p == pattern) {
                continue;
            }
            let here = format!("{path}/patternProperties/{}", escape(pattern.source()));
            self.schema(ws, ra, &here);
        }
    }
}

/// The schema of the first `patternProperties` entry matching `name`.
fn matching_pattern<'n>(node: &'n Node, name: &str) -> Option<&'n Schema> {
    node.pattern_properties
        .iter()
        .find(|(p, _)| p.is_match(name))
        .map(|(_, s)| s)
}

fn with_article(types: Types) -> String {
    let text = types.to_string();
    match text.as_bytes().first() {
        Some(b'a' | b'e' | b'i' | b'o' | b'u') => format!("an {text}"),
        _ if text == "null" => "null".to_owned(),
        _ => format!("a {text}"),
    }
}

/// Whether every number the writer accepts divides by the reader's step
/// `rm` without the quotient overflowing, or is an exact multiple of `rm`
/// where it does: `rm` at least 1 (no finite number overflows), the same step
/// (the writer already required an exact remainder there), a power of two
/// (every double that large is an integer times it), or a writer whose
/// `minimum` and `maximum` keep its numbers small enough.
fn overflow_safe(w: &Node, rm: f64) -> bool {
    let power_of_two = rm.is_normal() && rm.to_bits() & ((1 << 52) - 1) == 0;
    let small = |bound: Option<Bound>| bound.is_some_and(|b| (b.value / rm).is_finite());
    rm >= 1.0 || w.multiple_of == Some(rm) || power_of_two || (small(w.minimum) && small(w.maximum))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn backward(old: serde_json::Value, new: serde_json::Value) -> Vec<String> {
        let (old, new) = (Schema::parse(&old).unwrap(), Schema::parse(&new).unwrap());
        check(Compatibility::Backward, &new, &[(1, &old)])
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    /// Found by fuzz/fuzz_targets/schema_compat.rs: the checker called this
    /// pair compatible, yet the new schema refused 1e308, which the old one
    /// accepts (1e308 / 1e-8 overflows; 1e308 is no exact multiple of the
    /// double 1e-8).
    #[test]
    fn multiple_of_huge_numbers_overflow_the_readers_quotient() {
        let int = |m: f64| json!({"type": "integer", "multipleOf": m});
        let (old, new) = (int(5.123456789), int(1e-8));
        let instance = json!(1e308);
        assert!(Schema::parse(&old).unwrap().accepts(&instance));
        assert!(!Schema::parse(&new).unwrap().accepts(&instance));
        let found = backward(old, new);
        assert!(found[0].contains("multiple_of_changed"), "{found:?}");
        // Still compatible: a power-of-two step (every huge double is an
        // exact multiple), and a writer whose bounds keep the quotient finite.
        assert!(backward(json!({"type": "integer"}), int(0.5)).is_empty());
        let bounded = json!({"type": "integer", "minimum": -1e6, "maximum": 1e6});
        assert!(backward(bounded, int(1e-8)).is_empty());
    }

    #[test]
    fn exclusive_bounds_compare_exactly() {
        let min = |m: serde_json::Value| json!({"type": "number", "minimum": m});
        let xmin = |m: serde_json::Value| json!({"type": "number", "exclusiveMinimum": m});
        assert!(
            backward(xmin(json!(0)), min(json!(0))).is_empty(),
            "x > 0 implies x >= 0"
        );
        assert!(
            !backward(min(json!(0)), xmin(json!(0))).is_empty(),
            "x >= 0 admits 0"
        );
        assert!(backward(min(json!(1)), xmin(json!(0))).is_empty());
    }

    #[test]
    fn additional_properties_schemas_are_compared_like_properties() {
        let old = json!({"type": "object", "additionalProperties": {"type": "integer"}});
        let new = json!({"type": "object", "additionalProperties": {"type": "number"}});
        assert!(backward(old.clone(), new.clone()).is_empty());
        let found = backward(new, old);
        assert!(
            found[0].contains("#/additionalProperties: type changed from number to integer"),
            "{found:?}"
        );
        // A named property in the new schema is checked against the old
        // schema's additionalProperties.
        let old = json!({"type": "object", "additionalProperties": {"type": "string"}});
        let new = json!({"type": "object", "properties": {"plan": {"type": ["string", "null"]}}, "additionalProperties": {"type": "string"}});
        assert!(backward(old, new).is_empty());
    }

    #[test]
    fn an_unconstrained_old_schema_accepts_nothing_narrower() {
        let found = backward(json!({}), json!({"type": "object"}));
        assert!(
            found[0].contains("type changed from any type to object"),
            "{found:?}"
        );
        assert!(backward(json!({"type": "object"}), json!(true)).is_empty());
    }
}
