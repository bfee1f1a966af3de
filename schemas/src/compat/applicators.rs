//! Compatibility through `allOf`, `anyOf`, `oneOf`, `not` and
//! `if`/`then`/`else` (and `$ref` with siblings, which is an `allOf`).
//!
//! Inclusion between boolean combinations of schemas is out of reach in
//! general, so every rule below is a *sufficient* condition (the checker
//! stays sound) and the explanations say when a verdict is conservative:
//!
//! 1. The writer's applicators only narrow it: writer ⊆ its sibling
//!    keywords, ⊆ each `allOf` branch, ⊆ the union of its `anyOf`/`oneOf`
//!    branches, ⊆ `then` ∪ `else`. One of these inside the reader suffices.
//! 2. Applicators the reader shares verbatim with the writer hold for
//!    writer data already; then only the sibling keywords are compared
//!    (the usual case: a schema with a union that did not change).
//! 3. Reader `allOf`: the writer must fit every branch. Reader `anyOf`:
//!    the writer must fit one branch (a writer spread across several
//!    branches is refused). Reader `oneOf`, `not`, `if`: only proven when
//!    unchanged (exactly-one and negation need disjointness, not decided),
//!    except that a writer fitting both `then` and `else` fits an `if`.

use super::Checker;
use crate::model::{Node, Schema};

/// `node` without its applicators: the sibling keywords alone.
fn siblings(node: &Node) -> Schema {
    Schema::Node(Box::new(Node {
        all_of: Vec::new(),
        any_of: Vec::new(),
        one_of: Vec::new(),
        not: None,
        condition: None,
        ..node.clone()
    }))
}

/// Every applicator of `r` is also, verbatim, one of `w` (rule 2).
fn shares_applicators(w: &Node, r: &Node) -> bool {
    r.all_of.iter().all(|a| w.all_of.contains(a))
        && (r.any_of.is_empty() || r.any_of == w.any_of)
        && (r.one_of.is_empty() || r.one_of == w.one_of)
        && (r.not.is_none() || r.not == w.not)
        && (r.condition.is_none() || r.condition == w.condition)
}

impl Checker {
    /// Whether writer ⊆ reader is proven, without reporting.
    fn proves(&self, writer: &Schema, reader: &Schema) -> bool {
        let mut scratch = Checker {
            direction: self.direction,
            version: self.version,
            out: Vec::new(),
        };
        scratch.schema(writer, reader, "#");
        scratch.out.is_empty()
    }

    /// A writer with applicators (rules 1 and 2).
    pub(super) fn writer_applicators(&mut self, w: &Node, reader: &Schema, r: &Node, path: &str) {
        let own = siblings(w);
        if shares_applicators(w, r) {
            return self.schema(&own, &siblings(r), path);
        }
        if self.proves(&own, reader) || w.all_of.iter().any(|a| self.proves(a, reader)) {
            return;
        }
        if let Some(c) = &w.condition
            && self.proves(&c.then, reader)
            && self.proves(&c.otherwise, reader)
        {
            return;
        }
        let mut failing = None;
        for (keyword, branches) in [("anyOf", &w.any_of), ("oneOf", &w.one_of)] {
            if branches.is_empty() {
                continue;
            }
            match branches.iter().position(|b| !self.proves(b, reader)) {
                None => return,
                Some(i) => {
                    failing.get_or_insert((keyword, i, &branches[i]));
                }
            }
        }
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        match failing {
            Some((keyword, i, branch)) => {
                let here = format!("{path}/{keyword}/{i}");
                self.report(
                    &here,
                    "union_not_included",
                    format!(
                        "`{keyword}` branch {i} of the {wl} schema does not fit the {rl} schema (each branch is compared alone, without the writer's sibling keywords, so this may be conservative); the reasons follow"
                    ),
                );
                self.schema(branch, reader, &here);
            }
            None => {
                self.report(
                    path,
                    "applicator_not_proven",
                    format!(
                        "the {wl} schema's applicators (allOf/not/if) differ from the {rl} schema's and its sibling keywords alone do not fit the {rl} schema (conservative); the reasons follow"
                    ),
                );
                self.schema(&own, reader, path);
            }
        }
    }

    /// The reader's applicators, for a writer without any (rule 3).
    pub(super) fn reader_applicators(&mut self, writer: &Schema, r: &Node, path: &str) {
        let (wl, rl) = (self.direction.writer(), self.direction.reader());
        for (i, branch) in r.all_of.iter().enumerate() {
            self.schema(writer, branch, &format!("{path}/allOf/{i}"));
        }
        if !r.any_of.is_empty() && !r.any_of.iter().any(|b| self.proves(writer, b)) {
            self.report(
                &format!("{path}/anyOf"),
                "any_of_not_proven",
                format!(
                    "{wl} events are not proven to fit any single `anyOf` branch of the {rl} schema (each branch is compared alone, so data spread across branches is refused conservatively)"
                ),
            );
        }
        match r.one_of.as_slice() {
            [] => {}
            [only] => self.schema(writer, only, &format!("{path}/oneOf/0")),
            _ => self.report(
                &format!("{path}/oneOf"),
                "one_of_not_proven",
                format!(
                    "the {rl} schema adds or changes a `oneOf`: exactly-one-match needs the branches to be disjoint, which is not decided, so only an unchanged `oneOf` is proven compatible"
                ),
            ),
        }
        if r.not.is_some() {
            self.report(
                &format!("{path}/not"),
                "not_not_proven",
                format!(
                    "the {rl} schema adds or changes a `not`: excluding a set of values is only proven compatible when unchanged"
                ),
            );
        }
        if let Some(c) = &r.condition
            && !(self.proves(writer, &c.then) && self.proves(writer, &c.otherwise))
        {
            self.report(
                &format!("{path}/if"),
                "condition_not_proven",
                format!(
                    "the {rl} schema adds or changes `if`/`then`/`else` and {wl} events are not proven to fit both `then` and `else` (conservative)"
                ),
            );
        }
    }
}
