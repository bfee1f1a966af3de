//! `sluice plugin build` and `sluice plugin test`: a plugin directory's
//! language is detected ([`Toolchain::detect`]) and its toolchain run.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` (the component is
//!   in cargo's target directory), `cargo test` natively.
//! - TypeScript/JavaScript: the repository's `plugins/js/build.sh --plugin
//!   DIR DIR/dist` (esbuild, componentize-js) → `DIR/dist/<dir name>.wasm`;
//!   `plugins/js/tools/test-plugin.sh DIR` (tsc, then `node --test` over
//!   the tests bundled by esbuild). Needs Node.js 20 and npm; the pinned
//!   packages are installed into `plugins/js/node_modules` on first use.
//! - Python: `plugins/python/build.sh --plugin DIR DIR/dist`
//!   (componentize-py) → `DIR/dist/<dir name, `-` as `_`>.wasm`; pytest
//!   natively. Both from the toolchain's venv, which must be set up first
//!   (`bash plugins/python/lib.sh setup`).
//!
//! Dashes in the directory's name become underscores in the component's.
//! The toolchains' own output goes to stderr: `build` prints only the path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

use super::{Toolchain, sdk_path};

/// Builds the plugin in `dir` and returns the component's path. `sdk`: the
/// TypeScript/JavaScript or Python toolchain's directory (a Rust crate
/// names its SDK in `Cargo.toml`).
pub fn build(dir: &Path, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    match Toolchain::detect(dir)? {
        Toolchain::Rust => build_rust(dir),
        Toolchain::Js => {
            let js = toolchain_dir(Toolchain::Js, sdk)?;
            require_node()?;
            build_with_script(dir, &js.join("build.sh"))
        }
        Toolchain::Python => {
            let python = toolchain_dir(Toolchain::Python, sdk)?;
            python_venv(&python)?;
            build_with_script(dir, &python.join("build.sh"))
        }
    }
}

/// Runs the unit tests of the plugin in `dir`, natively, their output on
/// stdout and stderr.
pub fn test(dir: &Path, sdk: Option<&Path>) -> anyhow::Result<()> {
    match Toolchain::detect(dir)? {
        Toolchain::Rust => run(
            Command::new("cargo")
                .args(["test", "--manifest-path"])
                .arg(dir.join("Cargo.toml")),
            "cargo test",
        ),
        Toolchain::Js => {
            let js = toolchain_dir(Toolchain::Js, sdk)?;
            require_node()?;
            run(
                Command::new("bash")
                    .arg(js.join("tools/test-plugin.sh"))
                    .arg(dir),
                "plugins/js/tools/test-plugin.sh",
            )
        }
        Toolchain::Python => {
            let venv = python_venv(&toolchain_dir(Toolchain::Python, sdk)?)?;
            let status = Command::new(venv.join("bin/python"))
                .args(["-m", "pytest", "-p", "no:cacheprovider", "."])
                .current_dir(dir)
                .env("PYTHONDONTWRITEBYTECODE", "1")
                .status()
                .context("running pytest")?;
            match status.code() {
                Some(0) => Ok(()),
                // pytest's "no tests were collected".
                Some(5) => bail!("pytest found no tests in {}", dir.display()),
                _ => bail!("pytest failed ({status})"),
            }
        }
    }
}

/// The TypeScript/JavaScript or Python toolchain's directory, checked.
fn toolchain_dir(toolchain: Toolchain, sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    let dir = sdk_path(toolchain, sdk);
    let what = match toolchain {
        Toolchain::Js => "the TypeScript/JavaScript plugin toolchain",
        _ => "the Python plugin toolchain",
    };
    dir.canonicalize()
        .ok()
        .filter(|found| found.join("build.sh").is_file())
        .with_context(|| {
            format!(
                "{what} is not at {} (no build.sh): pass --sdk, or set SLUICE_REPO to a Sluice repository",
                dir.display()
            )
        })
}

/// Node.js 20 or later and npm, or an error saying to install them.
fn require_node() -> anyhow::Result<()> {
    const INSTALL: &str = "install Node.js 20 and npm";
    let version = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .with_context(|| format!("`node` was not found: {INSTALL}"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok());
    if major.is_none_or(|major| major < 20) {
        bail!("Node.js {version} is too old: {INSTALL}");
    }
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|out| out.status.success()) {
        bail!("`npm` was not found: {INSTALL}");
    }
    Ok(())
}

/// The Python toolchain's venv (componentize-py, pytest), if it is set up
/// (`lib.sh check`), else an error with the command that sets it up.
fn python_venv(python: &Path) -> anyhow::Result<PathBuf> {
    let lib = python.join("lib.sh");
    let out = Command::new("bash")
        .arg(&lib)
        .arg("check")
        .stderr(Stdio::null())
        .output()
        .context("running bash")?;
    if !out.status.success() {
        bail!(
            "the Python plugin toolchain (componentize-py, pytest) is not set up: run \
             `bash {} setup` (needs Python 3.11 or later; installs the pinned toolchain \
             from PyPI into a venv)",
            lib.display()
        );
    }
    Ok(PathBuf::from(String::from_utf8(out.stdout)?.trim()))
}

/// `script --plugin DIR DIR/dist` (plugins/js/build.sh or
/// plugins/python/build.sh): returns `DIR/dist/<dir name>.wasm`.
fn build_with_script(dir: &Path, script: &Path) -> anyhow::Result<PathBuf> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("reading {}", dir.display()))?;
    let name = dir
        .file_name()
        .and_then(|name| name.to_str())
        .with_context(|| format!("{} has no UTF-8 name", dir.display()))?;
    let out = dir.join("dist");
    run(
        Command::new("bash")
            .arg(script)
            .arg("--plugin")
            .arg(&dir)
            .arg(&out)
            .stdout(std::io::stderr()),
        &script.display().to_string(),
    )?;
    let component = out.join(format!("{}.wasm", name.replace('-', "_")));
    if !component.is_file() {
        bail!("the build succeeded but {} is missing", component.display());
    }
    Ok(component)
}

/// Runs `command`, failing unless it succeeds.
fn run(command: &mut Command, what: &str) -> anyhow::Result<()> {
    let status = command
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        bail!("{what} failed ({status})");
    }
    Ok(())
}

/// Builds the plugin crate in `dir` and returns the component's path.
fn build_rust(dir: &Path) -> anyhow::Result<PathBuf> {
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
