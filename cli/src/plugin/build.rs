//! `sluice plugin build` and `sluice plugin test`: a plugin directory's
//! language is detected ([`Toolchain::detect`]) and the project's own
//! toolchain run, the one its SDK package brings (see [`super`]): nothing
//! here reads a Sluice checkout.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` (the component is
//!   in cargo's target directory), `cargo test` natively.
//! - TypeScript/JavaScript: `npm ci` into `DIR/node_modules` (from the
//!   project's `package-lock.json`; again when that changes), then the SDK
//!   package's entry point: `sluice-plugin build DIR DIR/dist` (esbuild,
//!   componentize-js) → `DIR/dist/<dir name>.wasm`, `sluice-plugin test DIR`
//!   (tsc, then `node --test` over the tests bundled by esbuild). Needs
//!   Node.js 20 and npm.
//! - Python: a venv in `DIR/.venv` made from `DIR/requirements.txt` (the
//!   vendored SDK wheel, componentize-py, pytest; again when it changes),
//!   then `python -m sluice_plugin_tools build DIR DIR/dist` →
//!   `DIR/dist/<dir name, `-` as `_`>.wasm`, pytest natively. Needs Python
//!   3.11 or later (`$SLUICE_PYTHON`, else `python3`).
//!
//! Downloads are cached in `${SLUICE_CACHE:-~/.cache/sluice}/{npm,pip}`, so
//! a second project installs offline. Dashes in the directory's name become
//! underscores in the component's. The toolchains' own output goes to
//! stderr: `build` prints only the path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::Value;

use super::{Toolchain, cache_dir};

/// Builds the plugin in `dir` and returns the component's path.
pub fn build(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = &absolute(dir)?;
    match Toolchain::detect(dir)? {
        Toolchain::Rust => build_rust(dir),
        Toolchain::Js => {
            let entry = js_toolchain(dir)?;
            let out = dir.join("dist");
            let printed = output(
                Command::new("node")
                    .arg(&entry)
                    .arg("build")
                    .arg(dir)
                    .arg(&out),
                "sluice-plugin build",
            )?;
            component_at(&printed)
        }
        Toolchain::Python => {
            let venv = python_venv(dir)?;
            let printed = output(
                Command::new(venv.join("bin/python"))
                    .args(["-m", "sluice_plugin_tools", "build"])
                    .arg(dir)
                    .arg(dir.join("dist"))
                    .env("PYTHONDONTWRITEBYTECODE", "1"),
                "python -m sluice_plugin_tools build",
            )?;
            component_at(&printed)
        }
    }
}

/// Runs the unit tests of the plugin in `dir`, natively, their output on
/// stdout and stderr.
pub fn test(dir: &Path) -> anyhow::Result<()> {
    let dir = &absolute(dir)?;
    match Toolchain::detect(dir)? {
        Toolchain::Rust => {
            require_cargo()?;
            run(
                Command::new("cargo")
                    .args(["test", "--manifest-path"])
                    .arg(dir.join("Cargo.toml")),
                "cargo test",
            )
        }
        Toolchain::Js => {
            let entry = js_toolchain(dir)?;
            run(
                Command::new("node").arg(&entry).arg("test").arg(dir),
                "sluice-plugin test",
            )
        }
        Toolchain::Python => {
            let venv = python_venv(dir)?;
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

fn absolute(dir: &Path) -> anyhow::Result<PathBuf> {
    dir.canonicalize()
        .with_context(|| format!("{} is not a directory", dir.display()))
}

/// The component path a build entry point printed last.
fn component_at(printed: &str) -> anyhow::Result<PathBuf> {
    let path = printed
        .lines()
        .last()
        .map(|line| PathBuf::from(line.trim()))
        .context("the build printed no component path")?;
    if !path.is_file() {
        bail!("the build succeeded but {} is missing", path.display());
    }
    Ok(path)
}

/// The project's `node_modules`, installed from its lockfile if missing or
/// older than it, and the SDK package's entry point in it.
fn js_toolchain(dir: &Path) -> anyhow::Result<PathBuf> {
    require_node()?;
    let lock = dir.join("package-lock.json");
    // npm writes node_modules/.package-lock.json after every install.
    let installed = dir.join("node_modules/.package-lock.json");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    let stale = match modified(&installed) {
        None => true,
        Some(at) => [&lock, &dir.join("package.json")]
            .iter()
            .any(|input| modified(input).is_some_and(|changed| changed > at)),
    };
    if stale {
        // `ci` installs exactly the lockfile (integrity checked); a project
        // whose lockfile was deleted gets a new one from `install`.
        let verb = if lock.is_file() { "ci" } else { "install" };
        eprintln!("npm {verb} (node_modules missing or older than the lockfile)");
        let cache = cache_dir().join("npm");
        let status = Command::new("npm")
            .arg(verb)
            .arg("--cache")
            .arg(&cache)
            .args([
                "--prefer-offline",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(dir)
            .stdout(std::io::stderr())
            .status()
            .context("running npm")?;
        if !status.success() {
            bail!(
                "`npm {verb}` failed in {} ({status}): it installs the SDK from vendor/ and \
                 its toolchain from the npm registry",
                dir.display()
            );
        }
    }
    let entry = dir.join("node_modules/sluice-plugin/cli.mjs");
    if !entry.is_file() {
        bail!(
            "{} has no sluice-plugin package in node_modules: its package.json must depend on \
             it (`sluice plugin new --lang ts` writes \"sluice-plugin\": \"file:vendor/...\")",
            dir.display()
        );
    }
    Ok(entry)
}

/// Node.js 20 or later and npm, or an error saying to install them.
fn require_node() -> anyhow::Result<()> {
    const INSTALL: &str = "install Node.js 20 and npm (e.g. from https://nodejs.org)";
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

/// The project's venv (`DIR/.venv`), made from `DIR/requirements.txt` when
/// missing or made from other requirements (it keeps a copy of those it
/// was made from, written last: a venv without it is incomplete).
fn python_venv(dir: &Path) -> anyhow::Result<PathBuf> {
    let requirements = dir.join("requirements.txt");
    let text = std::fs::read(&requirements).with_context(|| {
        format!(
            "{} is missing: it pins the SDK and componentize-py (`sluice plugin new --lang \
             python` writes it)",
            requirements.display()
        )
    })?;
    let venv = dir.join(".venv");
    let stamp = venv.join("sluice-requirements.txt");
    if venv.join("bin/python").is_file() && std::fs::read(&stamp).is_ok_and(|made| made == text) {
        return Ok(venv);
    }
    let python = base_python()?;
    eprintln!("setting up {} from requirements.txt", venv.display());
    let _ = std::fs::remove_dir_all(&venv);
    run(
        Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .stdout(std::io::stderr()),
        &format!("{python} -m venv (on Debian or Ubuntu: `apt-get install python3-venv`)"),
    )?;
    let installed = run(
        Command::new(venv.join("bin/python"))
            .args([
                "-m",
                "pip",
                "install",
                "--require-hashes",
                "--only-binary=:all:",
                "-r",
                "requirements.txt",
            ])
            // The wheel's path in requirements.txt is relative to the project.
            .current_dir(dir)
            .env("PIP_CACHE_DIR", cache_dir().join("pip"))
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .stdout(std::io::stderr()),
        "pip install -r requirements.txt (the SDK from vendor/, the toolchain from PyPI)",
    );
    if let Err(error) = installed {
        let _ = std::fs::remove_dir_all(&venv);
        return Err(error);
    }
    std::fs::write(&stamp, text).with_context(|| format!("writing {}", stamp.display()))?;
    Ok(venv)
}

/// A Python 3.11 or later: `$SLUICE_PYTHON`, else `python3`.
fn base_python() -> anyhow::Result<String> {
    let candidates = std::env::var("SLUICE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty())
        .into_iter()
        .chain(["python3".to_owned(), "python3.11".to_owned()]);
    for candidate in candidates {
        let new_enough = Command::new(&candidate)
            .args(["-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if new_enough {
            return Ok(candidate);
        }
    }
    bail!(
        "no Python 3.11 or later found: install it (e.g. `apt-get install python3 python3-venv`) \
         or set SLUICE_PYTHON to one"
    )
}

/// Runs `command` (its stdout captured, its stderr shown), failing unless
/// it succeeds; returns its stdout.
fn output(command: &mut Command, what: &str) -> anyhow::Result<String> {
    let out = command
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("running {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// cargo, or an error saying how to install Rust.
fn require_cargo() -> anyhow::Result<()> {
    let cargo = Command::new("cargo").arg("--version").output();
    if !cargo.is_ok_and(|out| out.status.success()) {
        bail!("`cargo` was not found: install Rust with rustup (https://rustup.rs)");
    }
    Ok(())
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
    require_cargo()?;
    let status = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip2"])
        .status()
        .context(
            "`rustup` was not found: install Rust with rustup (https://rustup.rs), which \
             `sluice plugin build` needs to add the wasm32-wasip2 target",
        )?;
    if !status.success() {
        bail!("`rustup target add wasm32-wasip2` failed: run it to see why");
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
        bail!("cargo build --target wasm32-wasip2 failed");
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
