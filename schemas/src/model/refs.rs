//! `$ref`: local JSON Pointers, expanded in place while parsing.

use serde_json::Value;

use super::{Ctx, Schema, SchemaError, escape, invalid, parse_at};

/// `$ref`: a local JSON Pointer (`#`, `#/$defs/address`), expanded in
/// place. Cycles are refused: a recursive schema has no finite expansion.
pub(super) fn reference(
    value: &Value,
    here: &str,
    ctx: &mut Ctx<'_>,
) -> Result<Schema, SchemaError> {
    let unsupported = |message: String| SchemaError {
        code: "unsupported_keyword",
        path: here.to_owned(),
        message,
    };
    let text = value
        .as_str()
        .ok_or_else(|| invalid(here, "`$ref` must be a string"))?;
    let Some(pointer) = text.strip_prefix('#') else {
        return Err(unsupported(format!(
            "`$ref` {text:?} is not a local reference: only `#` and `#/...` pointers into the same document are supported (no remote schemas)"
        )));
    };
    let pointer = percent_decode(pointer);
    if !pointer.is_empty() && !pointer.starts_with('/') {
        return Err(unsupported(format!(
            "`$ref` {text:?} names an anchor; only JSON Pointers (`#/...`) are supported"
        )));
    }
    let root = ctx.root;
    let legacy_id = ctx.reading.legacy_id();
    let nested_ids = *ctx
        .nested_ids
        .get_or_insert_with(|| has_nested_id(root, 0, legacy_id));
    if nested_ids {
        let ids = if legacy_id {
            "`$id`s or `id`s"
        } else {
            "`$id`s"
        };
        return Err(unsupported(format!(
            "`$ref` in a document with nested {ids} (bundled resources) is not supported: their pointers are relative to each resource"
        )));
    }
    let mut target = root;
    let mut target_path = "#".to_owned();
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        target = match target {
            Value::Object(map) => map.get(&segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        }
        .ok_or_else(|| invalid(here, format!("`$ref` target {text:?} does not exist")))?;
        target_path.push('/');
        target_path.push_str(&escape(&segment));
    }
    if let Some(start) = ctx.expanding.iter().position(|p| *p == target_path) {
        let mut chain = ctx.expanding[start..].to_vec();
        chain.push(target_path);
        return Err(unsupported(format!(
            "recursive `$ref` (cycle {}): a recursive schema has no finite expansion, so it is refused",
            chain.join(" -> ")
        )));
    }
    ctx.expanding.push(target_path.clone());
    let parsed = parse_at(target, &target_path, ctx);
    ctx.expanding.pop();
    parsed
}

/// Whether a subschema below the root declares `$id` (a new base for
/// pointers, which this engine does not track), or draft-04's `id` when
/// `legacy_id`.
fn has_nested_id(value: &Value, depth: usize, legacy_id: bool) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (depth > 0 && (k == "$id" || (legacy_id && k == "id")) && v.is_string())
                || has_nested_id(v, depth + 1, legacy_id)
        }),
        Value::Array(items) => items.iter().any(|v| has_nested_id(v, depth + 1, legacy_id)),
        _ => false,
    }
}

/// `%22` → `"` in a URI fragment.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
