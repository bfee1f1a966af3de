//! `sluice plugin ...`: develop, try and ship plugins.
//!
//! - `new`: scaffold a plugin crate on the guest SDK;
//! - `build`: compile it to a component (`wasm32-wasip2`);
//! - `run`: run a component locally over a file of sample events, with the
//!   gateway's own runtime and limits, and show each verdict (no Kafka);
//! - `upload`: send it to a gateway's admin API.

#[cfg(feature = "local-plugins")]
mod run;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use serde_json::Value;
use sluice_plugin_host::PluginKind;

#[cfg(feature = "local-plugins")]
pub use run::run;

/// Without the `local-plugins` feature there is no runtime to run a plugin.
#[cfg(not(feature = "local-plugins"))]
pub fn run(_: &Path, _: PluginKind, _: &str, _: &Path) -> anyhow::Result<usize> {
    bail!(
        "this sluice was built without local plugin runs; rebuild it with \
         `cargo install --path cli --features local-plugins` (the default)"
    )
}

/// Where the guest SDK lives when the CLI was built from this repository.
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

pub fn parse_kind(kind: &str) -> anyhow::Result<PluginKind> {
    kind.parse().map_err(anyhow::Error::msg)
}

/// Creates `dir/name` with a compiling plugin of `kind`.
pub fn scaffold(dir: &Path, name: &str, kind: PluginKind, sdk: &Path) -> anyhow::Result<PathBuf> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        bail!("plugin name must be lowercase letters, digits and `-` (e.g. `my-validator`)");
    }
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let sdk = sdk
        .canonicalize()
        .with_context(|| format!("guest SDK not found at {} (pass --sdk)", sdk.display()))?;
    std::fs::create_dir_all(root.join("src"))?;
    let type_name: String = name
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect();
    std::fs::write(
        root.join("Cargo.toml"),
        format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"

# A component for Sluice: `sluice plugin build` compiles it for wasm32-wasip2.
[lib]
crate-type = ["cdylib", "rlib"]

[dependencies]
sluice-plugin-sdk = {{ path = "{sdk}" }}
serde = {{ version = "1", features = ["derive"] }}

[profile.release]
opt-level = "s"
lto = true
strip = true
codegen-units = 1

[workspace]
"#,
            sdk = sdk.display()
        ),
    )?;
    let source = match kind {
        PluginKind::Validator => format!(
            r##"//! A Sluice validator: one verdict per event.

use sluice_plugin_sdk::{{Event, Fields, PluginError, Validator, Verdict, export_validator, parse_config}};

/// Configuration, from the team's plugin settings (JSON).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct {type_name} {{
    /// Event names this plugin refuses.
    blocked_events: Vec<String>,
}}

impl Validator for {type_name} {{
    /// What the host sends besides `event_id` and `name`: nothing else is
    /// needed here (add e.g. `Fields::PROPERTIES` to read properties).
    const FIELDS: Fields = Fields::NONE;

    fn init(config: &str) -> Result<Self, PluginError> {{
        parse_config(config)
    }}

    fn validate(&self, event: &Event<'_>) -> Verdict {{
        let name = event.name();
        if self.blocked_events.iter().any(|blocked| *blocked == name) {{
            Verdict::reject("blocked_event", format!("`{{name}}` events are not accepted"))
        }} else {{
            Verdict::accept()
        }}
    }}
}}

export_validator!({type_name});

#[cfg(test)]
mod tests {{
    use super::*;
    use sluice_plugin_sdk::{{Batch, EventBuf}};

    #[test]
    fn refuses_the_blocked_events_only() {{
        let plugin = {type_name}::init(r#"{{"blocked_events": ["Test Event"]}}"#).unwrap();
        let events = [EventBuf::new("Test Event"), EventBuf::new("Signed Up")];
        // Encoded as the host encodes them for this plugin's fields.
        let verdicts = Batch::encode(&events, {type_name}::FIELDS).validate_with(&plugin);
        assert_eq!(verdicts[0].reject_code(), Some("blocked_event"));
        assert!(verdicts[1].is_accept());
    }}

    #[test]
    fn an_unknown_setting_is_an_invalid_configuration() {{
        assert!({type_name}::init(r#"{{"blocked": []}}"#).is_err());
    }}
}}
"##
        ),
        PluginKind::Enricher => format!(
            r##"//! A Sluice enricher: may change each event, by a patch.

use sluice_plugin_sdk::{{Enriched, Enricher, Event, Fields, Patch, PluginError, export_enricher, parse_config}};

/// Configuration, from the team's plugin settings (JSON).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct {type_name} {{
    /// Added to every event as the `environment` property.
    environment: String,
}}

impl Enricher for {type_name} {{
    /// A patch may add properties without reading them: nothing is needed.
    const FIELDS: Fields = Fields::NONE;

    fn init(config: &str) -> Result<Self, PluginError> {{
        parse_config(config)
    }}

    fn enrich(&self, _event: &Event<'_>) -> Enriched {{
        let mut patch = Patch::new();
        patch.set_property("environment", self.environment.clone());
        Enriched::patched(patch)
    }}
}}

export_enricher!({type_name});

#[cfg(test)]
mod tests {{
    use super::*;
    use sluice_plugin_sdk::{{Batch, EventBuf}};

    #[test]
    fn adds_the_environment_to_every_event() {{
        let plugin = {type_name}::init(r#"{{"environment": "staging"}}"#).unwrap();
        let events = [EventBuf::new("Signed Up")];
        let results = Batch::encode(&events, {type_name}::FIELDS).enrich_with(&plugin);
        let Enriched::Patched(patch) = &results[0] else {{
            panic!("{{:?}}", results[0])
        }};
        assert_eq!(patch.to_json(), r#"{{"properties":{{"environment":"staging"}}}}"#);
    }}
}}
"##
        ),
    };
    std::fs::write(root.join("src/lib.rs"), source)?;
    Ok(root)
}

/// Builds the plugin crate in `dir` and returns the component's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context("running rustup (is Rust installed with rustup?)")?;
    if !status.success() {
        bail!("`rustup target add wasm32-wasip2` failed");
    }
    let manifest = dir.join("Cargo.toml");
    let status = Command::new("cargo")
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--manifest-path",
        ])
        .arg(&manifest)
        .status()
        .context("running cargo")?;
    if !status.success() {
        bail!("cargo build failed");
    }
    let metadata = Command::new("cargo")
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(&manifest)
        .output()?;
    let metadata: Value =
        serde_json::from_slice(&metadata.stdout).context("reading cargo metadata")?;
    let target = metadata["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    let name = metadata["packages"][0]["name"]
        .as_str()
        .context("cargo metadata has no package")?;
    let path = Path::new(target)
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    if !path.is_file() {
        bail!(
            "build succeeded but {} is missing (is the crate a cdylib?)",
            path.display()
        );
    }
    Ok(path)
}
