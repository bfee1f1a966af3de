//! `sluice plugin ...`: develop, try and ship plugins, in Rust, TypeScript,
//! JavaScript or Python.
//!
//! - `new` ([`scaffold`]): a plugin directory on the language's SDK, from the
//!   templates in `templates/<lang>/`;
//! - `build` / `test` ([`build`]): compile a plugin into a component, or run
//!   its unit tests natively, with its language's toolchain (detected from
//!   the directory: `Cargo.toml`, `package.json` with `"sluice"`, or
//!   `sluice.toml`);
//! - `run`: run a component locally over a file of sample events, with the
//!   gateway's own runtime and limits, and show each verdict (no Kafka);
//! - `upload`: send it to a gateway's admin API.
//!
//! The SDKs and the TypeScript/JavaScript and Python toolchains live in a
//! Sluice repository (`plugins/sdk`, `plugins/js`, `plugins/python`): by
//! default the one this `sluice` was built from, else `$SLUICE_REPO`, or
//! per command the language's own directory with `--sdk`.

mod build;
#[cfg(feature = "local-plugins")]
mod run;
mod scaffold;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{Context, bail};
use sluice_plugin_host::PluginKind;

pub use build::{build, test};
#[cfg(feature = "local-plugins")]
pub use run::run;
pub use scaffold::scaffold;

/// Without the `local-plugins` feature there is no runtime to run a plugin.
#[cfg(not(feature = "local-plugins"))]
pub fn run(_: &Path, _: PluginKind, _: &str, _: &Path) -> anyhow::Result<usize> {
    bail!(
        "this sluice was built without local plugin runs; rebuild it with \
         `cargo install --path cli --features local-plugins` (the default)"
    )
}

/// The language a plugin is written in (`sluice plugin new --lang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Rust,
    TypeScript,
    JavaScript,
    Python,
}

impl FromStr for Lang {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        Ok(match text {
            "rust" => Self::Rust,
            "ts" | "typescript" => Self::TypeScript,
            "js" | "javascript" => Self::JavaScript,
            "python" | "py" => Self::Python,
            _ => bail!("unknown language `{text}`: expected rust, ts, js or python"),
        })
    }
}

impl Lang {
    pub fn toolchain(self) -> Toolchain {
        match self {
            Self::Rust => Toolchain::Rust,
            Self::TypeScript | Self::JavaScript => Toolchain::Js,
            Self::Python => Toolchain::Python,
        }
    }
}

/// What builds and tests a plugin: TypeScript and JavaScript share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Toolchain {
    /// cargo, for `wasm32-wasip2`; the SDK is the `sluice-plugin-sdk` crate.
    Rust,
    /// `plugins/js`: esbuild and componentize-js (Node.js and npm).
    Js,
    /// `plugins/python`: componentize-py and pytest in a venv.
    Python,
}

impl Toolchain {
    /// Its directory under a Sluice repository's `plugins/`.
    fn dir_name(self) -> &'static str {
        match self {
            Self::Rust => "sdk",
            Self::Js => "js",
            Self::Python => "python",
        }
    }

    /// The language the plugin in `dir` is written in, from its manifest:
    /// `Cargo.toml`, `package.json` with a `"sluice"` member, or `sluice.toml`.
    pub fn detect(dir: &Path) -> anyhow::Result<Self> {
        if !dir.is_dir() {
            bail!("{} is not a directory", dir.display());
        }
        if dir.join("Cargo.toml").is_file() {
            return Ok(Self::Rust);
        }
        let package = dir.join("package.json");
        if package.is_file() {
            let text = std::fs::read_to_string(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let manifest: serde_json::Value = serde_json::from_str(&text)
                .with_context(|| format!("{} is not JSON", package.display()))?;
            if manifest.get("sluice").is_some() {
                return Ok(Self::Js);
            }
        }
        if dir.join("sluice.toml").is_file() {
            return Ok(Self::Python);
        }
        bail!(
            "{} is not a plugin: it has no Cargo.toml (Rust), package.json with \
             \"sluice\": {{\"world\": ...}} (TypeScript, JavaScript) or sluice.toml (Python); \
             `sluice plugin new` makes one",
            dir.display()
        )
    }
}

/// The Sluice repository whose `plugins/` holds the SDKs and toolchains:
/// `$SLUICE_REPO`, else the one this `sluice` was built from.
pub fn repository() -> PathBuf {
    match std::env::var_os("SLUICE_REPO") {
        Some(repo) if !repo.is_empty() => PathBuf::from(repo),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join(".."),
    }
}

/// The SDK (and toolchain) of `toolchain`: `sdk` when given, else its
/// directory in [`repository`].
pub fn sdk_path(toolchain: Toolchain, sdk: Option<&Path>) -> PathBuf {
    match sdk {
        Some(sdk) => sdk.to_owned(),
        None => repository().join("plugins").join(toolchain.dir_name()),
    }
}

pub fn parse_kind(kind: &str) -> anyhow::Result<PluginKind> {
    kind.parse().map_err(anyhow::Error::msg)
}
