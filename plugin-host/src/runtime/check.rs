//! What an upload can be told at once, before the component is compiled.
//!
//! Compiling a 10–20 MB TypeScript or Python component takes seconds to tens
//! of seconds, so upload no longer waits for it (the plugin shows
//! `compiling`). What a team gets wrong in practice is visible without
//! compiling, in milliseconds: bytes that are not a component, a component
//! that does not validate, one built for the other kind's world or for an
//! interface version this gateway does not link, one importing something the
//! gateway does not provide. [`check`] answers those, so a later compile
//! failure is rare (engine limits, a function whose type does not match the
//! WIT), and is reported through the plugin's state instead.

use wasmparser::{Parser, Payload, Validator, WasmFeatures};

use super::{CompileError, PluginKind};

/// The `sluice:plugin` versions the runtime links, newest first.
const WIT_VERSIONS: [&str; 2] = ["0.2.0", "0.1.0"];

/// Checks `bytes` as a component of `kind`'s world without compiling it, and
/// returns the `sluice:plugin` version it implements.
pub fn check(bytes: &[u8], kind: PluginKind, limit: usize) -> Result<&'static str, CompileError> {
    if bytes.len() > limit {
        return Err(CompileError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if !super::is_component(bytes) {
        return Err(CompileError::NotAComponent);
    }
    // Wasmtime validates again when it compiles, against the features its
    // engine enables; validating here with every feature catches malformed
    // bytes now and leaves only the engine's narrower choices to the compile.
    Validator::new_with_features(WasmFeatures::all())
        .validate_all(bytes)
        .map_err(|e| CompileError::Invalid(e.to_string()))?;
    let (imports, exports) = surface(bytes).map_err(|e| CompileError::Invalid(e.to_string()))?;

    let wrong_world = |detail: String| CompileError::WrongWorld {
        expected: kind.as_str(),
        detail,
    };
    let entry = match kind {
        PluginKind::Validator => "validate",
        PluginKind::Enricher => "enrich",
    };
    let Some(version) = WIT_VERSIONS.into_iter().find(|v| {
        exports
            .iter()
            .any(|e| *e == format!("sluice:plugin/{entry}@{v}"))
    }) else {
        let found = exports
            .iter()
            .filter(|e| e.starts_with("sluice:plugin/"))
            .cloned()
            .collect::<Vec<_>>();
        return Err(wrong_world(if found.is_empty() {
            format!("it exports no `sluice:plugin/{entry}` interface")
        } else {
            format!(
                "it exports {} but not `sluice:plugin/{entry}` of a supported version",
                found.join(", ")
            )
        }));
    };
    // Only WASI and the plugin package's own interfaces (`log`, and `types`,
    // which holds no functions) are linked; anything else would fail at
    // instantiation on every replica.
    if let Some(other) = imports
        .iter()
        .find(|i| !i.starts_with("wasi:") && !i.starts_with("sluice:plugin/"))
    {
        return Err(wrong_world(format!(
            "it imports `{other}`, which the gateway does not provide (only WASI and sluice:plugin)"
        )));
    }
    Ok(version)
}

/// Names of the component's own imports and exports (not those of the
/// modules and components nested in it).
fn surface(bytes: &[u8]) -> wasmparser::Result<(Vec<String>, Vec<String>)> {
    let (mut imports, mut exports) = (Vec::new(), Vec::new());
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(reader) if depth == 0 => {
                for import in reader {
                    imports.push(import?.name.name.to_owned());
                }
            }
            Payload::ComponentExportSection(reader) if depth == 0 => {
                for export in reader {
                    exports.push(export?.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok((imports, exports))
}
