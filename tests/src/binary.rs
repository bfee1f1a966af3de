//! Workspace binaries for suites that run the real process (its `main`, its
//! allocator, its signal handling) rather than the library in this process.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};

/// The debug build of the workspace binary `name` (`sluice-gateway`, ...).
///
/// `cargo test --workspace` has built it already, next to this test's own
/// executable; a narrower `cargo test -p sluice-tests` has not, so it is built
/// here (into the same target directory). A binary already there is used as
/// is: after changing the gateway, run the workspace tests (as CI does) or
/// build it first, or a narrow run tests the previous build.
pub fn workspace_binary(package: &str, name: &str) -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the test executable")?;
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .context("the test executable is not under target/<profile>/deps")?;
    let path = dir.join(name);
    if path.is_file() {
        return Ok(path);
    }
    let status = Command::new(env!("CARGO"))
        .args(["build", "--locked", "-p", package, "--bin", name])
        .status()
        .with_context(|| format!("running cargo build for {name}"))?;
    if !status.success() || !path.is_file() {
        bail!("building {name} failed ({status}); try `cargo build -p {package}`");
    }
    Ok(path)
}
