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
//! # Packaged SDKs
//!
//! A plugin project must build on a machine that has no Sluice checkout, so
//! `new` scaffolds against the SDK *package*, by version ([`SDK_VERSION`]),
//! and copies that package into the project (`vendor/`): the project then
//! needs nothing but its language's registry for the pinned toolchain, and
//! its SDK is reviewed and upgraded like any other file (a new `sluice`
//! never changes an existing project behind its back). Per language:
//!
//! | language | shipped package | what `new` writes |
//! |---|---|---|
//! | rust | `sluice-plugin-sdk-V.crate` (`cargo package`) | `sluice-plugin-sdk = "V"` in `Cargo.toml`, and `[patch.crates-io]` pointing it at the archive unpacked in `vendor/sluice-plugin-sdk-V/`: cargo resolves the dependency by version and takes the sources from there (the crate is not on crates.io) |
//! | ts, js | `sluice-plugin-V.tgz` (`npm pack`), `sluice-plugin-V-package-lock.json` | `vendor/sluice-plugin-V.tgz`, `"sluice-plugin": "file:vendor/sluice-plugin-V.tgz"` in `package.json`, and `package-lock.json` pinning it (by integrity) and its toolchain (esbuild, componentize-js) |
//! | python | `sluice_plugin-V-py3-none-any.whl`, `sluice_plugin-V-requirements.txt` | `vendor/<the wheel>` and `requirements.txt`: the wheel and componentize-py and pytest, every file by hash |
//!
//! `build` and `test` then run the project's own toolchain: cargo; `npm ci`
//! into `node_modules` and the package's `sluice-plugin` entry point; a venv
//! in `.venv` from `requirements.txt` and `python -m sluice_plugin_tools`.
//!
//! The packages are made by the repository's `scripts/package-sdks` and
//! shipped next to the CLI. `new` takes them from the first of ([`sdk_dir`]):
//! `--sdk DIR`, `$SLUICE_SDK_DIR`, `<dir of the sluice binary>/../share/sluice/sdk`
//! (an installed layout: `bin/sluice` beside `share/sluice/sdk/`), and
//! `${SLUICE_CACHE:-~/.cache/sluice}/sdk` (where `scripts/package-sdks` puts
//! them by default, for a `sluice` built from a checkout). For developing
//! the Rust SDK itself, `--sdk` may also name the crate's sources
//! (`plugins/sdk`): the patch then points there instead of at a copy.

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
    /// The `sluice-plugin` npm package: esbuild and componentize-js (Node.js and npm).
    Js,
    /// The `sluice-plugin` wheel: componentize-py and pytest in a venv.
    Python,
}

impl Toolchain {
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

/// The version of the SDK packages this `sluice` scaffolds against: the
/// `sluice:plugin` interface it speaks (a unit test keeps it equal to the
/// versions in `plugins/sdk`, `plugins/js` and `plugins/python/package`).
pub const SDK_VERSION: &str = "0.2.0";

/// A shipped SDK package of `toolchain`, by file name: the one whose
/// presence makes a directory a candidate for [`sdk_dir`].
pub fn package_file(toolchain: Toolchain) -> String {
    match toolchain {
        Toolchain::Rust => format!("sluice-plugin-sdk-{SDK_VERSION}.crate"),
        Toolchain::Js => format!("sluice-plugin-{SDK_VERSION}.tgz"),
        Toolchain::Python => format!("sluice_plugin-{SDK_VERSION}-py3-none-any.whl"),
    }
}

/// The directory holding `toolchain`'s SDK package ([`package_file`]): the
/// first candidate that has it, of `--sdk`, `$SLUICE_SDK_DIR`,
/// `<exe dir>/../share/sluice/sdk` and `${SLUICE_CACHE:-~/.cache/sluice}/sdk`.
/// An explicit `--sdk` or `$SLUICE_SDK_DIR` without it is an error rather
/// than a silent fall-through to another version.
pub fn sdk_dir(toolchain: Toolchain, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    let file = package_file(toolchain);
    let explicit = sdk.map(|dir| (dir.to_owned(), "--sdk")).or_else(|| {
        std::env::var_os("SLUICE_SDK_DIR")
            .filter(|dir| !dir.is_empty())
            .map(|dir| (PathBuf::from(dir), "SLUICE_SDK_DIR"))
    });
    if let Some((dir, source)) = explicit {
        if dir.join(&file).is_file() {
            return Ok(dir);
        }
        bail!(
            "{} ({source}) has no {file}: make the SDK packages with `scripts/package-sdks {}` \
             in a Sluice checkout",
            dir.display(),
            dir.display()
        );
    }
    let mut candidates = Vec::new();
    if let Some(bin) = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_owned))
    {
        candidates.push(bin.join("../share/sluice/sdk"));
    }
    candidates.push(cache_dir().join("sdk"));
    if let Some(found) = candidates.iter().find(|dir| dir.join(&file).is_file()) {
        return Ok(found.clone());
    }
    let looked: Vec<String> = candidates.iter().map(|d| d.display().to_string()).collect();
    bail!(
        "the SDK package {file} is not shipped with this sluice (looked in {}): run \
         `scripts/package-sdks` in a Sluice checkout, or set SLUICE_SDK_DIR to the directory \
         that holds the packages",
        looked.join(", ")
    )
}

/// `${SLUICE_CACHE:-~/.cache/sluice}`: where sluice keeps what it downloads
/// and compiles (the packages' default home, npm's and pip's caches).
pub fn cache_dir() -> PathBuf {
    match std::env::var_os("SLUICE_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/sluice"),
    }
}

pub fn parse_kind(kind: &str) -> anyhow::Result<PluginKind> {
    kind.parse().map_err(anyhow::Error::msg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The packages `scripts/package-sdks` makes carry these versions: a
    /// bump of one SDK without the CLI (or the reverse) fails here.
    #[test]
    fn the_cli_scaffolds_the_version_every_sdk_has() {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let read = |path: &str| std::fs::read_to_string(repo.join(path)).unwrap();
        let quoted = format!("version = \"{SDK_VERSION}\"");
        assert!(read("plugins/sdk/Cargo.toml").contains(&quoted));
        assert!(read("plugins/python/package/pyproject.toml").contains(&quoted));
        let js: serde_json::Value = serde_json::from_str(&read("plugins/js/package.json")).unwrap();
        assert_eq!(js["version"], SDK_VERSION);
    }
}
