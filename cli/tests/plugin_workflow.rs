//! The plugin developer's loop through the real `sluice` binary, in each
//! language: scaffold a validator, run its generated unit tests, build it
//! into a component, run it over sample events.
//!
//! Scaffolds are made from the packaged SDKs (`scripts/package-sdks`, which
//! `scripts/test` runs; `SLUICE_SDK_DIR` points at them, `SLUICE_REPO` is
//! unset) into a temporary directory outside the repository, and must not
//! name it: they build as they would on a machine without the checkout,
//! with their own toolchain (cargo; npm ci and Node.js 20; a venv from
//! PyPI). TypeScript/JavaScript and Python components carry an interpreter
//! (12-19 MB): each `sluice plugin run` compiles one for seconds.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cache() -> PathBuf {
    std::env::var("SLUICE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sluice"))
}

/// The packaged SDKs: `scripts/package-sdks`'s default output.
fn sdk_dir() -> PathBuf {
    let dir = std::env::var_os("SLUICE_SDK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("sdk"));
    assert!(
        dir.join("sluice-plugin-sdk-0.2.0.crate").is_file(),
        "no SDK packages in {}: run scripts/package-sdks",
        dir.display()
    );
    dir
}

fn sluice() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    // Plugin builds share one cache outside the clone (see plugins/build.sh).
    command.env("CARGO_TARGET_DIR", cache().join("plugins-target"));
    command
        .env("SLUICE_SDK_DIR", sdk_dir())
        .env_remove("SLUICE_REPO");
    command
}

/// No file the scaffold wrote (its vendored SDK and installed toolchain
/// aside) names the repository: the project builds anywhere.
fn mentions_no_checkout(plugin: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .canonicalize()
        .unwrap();
    let repo = repo.to_str().unwrap();
    let mut dirs = vec![plugin.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap();
            if [
                "vendor",
                "node_modules",
                ".venv",
                "dist",
                ".build",
                "target",
            ]
            .contains(&name)
            {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else {
                let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
                assert!(!text.contains(repo), "{} names {repo}", path.display());
            }
        }
    }
}

/// A fresh directory under the system's temporary directory.
fn temp_dir() -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("sluice-scaffold-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Asserts the command succeeded and returns its stdout.
fn success(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `sluice plugin new NAME --kind KIND --lang LANG --dir DIR`: the plugin's directory.
fn scaffold(dir: &Path, name: &str, kind: &str, lang: &str) -> PathBuf {
    success(
        sluice()
            .args([
                "plugin", "new", name, "--kind", kind, "--lang", lang, "--dir",
            ])
            .arg(dir)
            .output()
            .unwrap(),
    );
    dir.join(name)
}

/// `sluice plugin build DIR`: the component's path, the first word printed.
fn build(plugin: &Path) -> PathBuf {
    let stdout = success(
        sluice()
            .args(["plugin", "build"])
            .arg(plugin)
            .output()
            .unwrap(),
    );
    let component = PathBuf::from(stdout.split(" (").next().unwrap().trim());
    assert!(component.is_file(), "{stdout}");
    component
}

/// `sluice plugin test DIR`: its output.
fn plugin_test(plugin: &Path) -> String {
    success(
        sluice()
            .args(["plugin", "test"])
            .arg(plugin)
            .output()
            .unwrap(),
    )
}

/// The scaffolded validator, built, over the same two events in every
/// language: the configured name is rejected, the other accepted; no
/// configuration accepts both; an unknown setting is refused.
fn assert_blocks_test_events(component: &Path, dir: &Path) {
    let events = dir.join("events.json");
    std::fs::write(
        &events,
        r#"[{"event": "Test Event", "user_id": "u1"}, {"event": "Signed Up", "user_id": "u2"}]"#,
    )
    .unwrap();
    let run = |config: &str| {
        sluice()
            .args(["plugin", "run"])
            .arg(component)
            .args(["--kind", "validator", "--config", config, "--events"])
            .arg(&events)
            .output()
            .unwrap()
    };
    let out = run(r#"{"blocked_events": ["Test Event"]}"#);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a rejection fails the run: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: Vec<&str> = stdout.lines().next().unwrap().split_whitespace().collect();
    assert!(
        first.windows(2).any(|w| w == ["reject", "blocked_event:"]),
        "{stdout}"
    );
    assert!(
        stdout.lines().nth(1).unwrap().ends_with("accept"),
        "{stdout}"
    );

    success(run("{}"));

    let out = run(r#"{"unknown_key": 1}"#);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("configuration"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn scaffold_build_and_run_a_validator() {
    let dir = temp_dir();
    let name = format!("block-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let plugin = scaffold(&dir, &name, "validator", "rust");
    mentions_no_checkout(&plugin);
    let manifest = std::fs::read_to_string(plugin.join("Cargo.toml")).unwrap();
    assert!(
        manifest.contains("sluice-plugin-sdk = \"0.2.0\""),
        "{manifest}"
    );

    // The scaffold passes its own unit tests as generated.
    generated_tests_pass(&plugin);

    let component = build(&plugin);
    assert_blocks_test_events(&component, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `cargo test` in a scaffolded crate (natively: plugin logic is plain Rust).
fn generated_tests_pass(crate_dir: &std::path::Path) {
    let out = sluice()
        .get_envs()
        .fold(Command::new("cargo"), |mut cargo, (key, value)| {
            if let Some(value) = value {
                cargo.env(key, value);
            }
            cargo
        })
        .args(["test", "--lib", "--manifest-path"])
        .arg(crate_dir.join("Cargo.toml"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("test result: ok."), "{stdout}");
    assert!(
        !stdout.contains("running 0 tests"),
        "the scaffold has tests: {stdout}"
    );
}

#[test]
fn a_scaffolded_enricher_passes_its_own_tests() {
    let dir = temp_dir();
    generated_tests_pass(&scaffold(&dir, "tag-env", "enricher", "rust"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Node's test runner passed every test, and there were some.
fn node_tests_passed(output: &str) {
    assert!(output.contains("ℹ fail 0"), "{output}");
    assert!(
        output
            .lines()
            .any(|l| l.starts_with("ℹ pass ") && l != "ℹ pass 0"),
        "{output}"
    );
}

#[test]
fn scaffold_test_build_and_run_a_typescript_validator() {
    let dir = temp_dir();
    let plugin = scaffold(&dir, "block-test-events", "validator", "ts");
    mentions_no_checkout(&plugin);
    assert!(plugin.join("vendor/sluice-plugin-0.2.0.tgz").is_file());

    // `sluice plugin test` installs the project's toolchain (npm ci, from
    // its lockfile) and runs tsc, then node --test on the esbuild bundle.
    node_tests_passed(&plugin_test(&plugin));
    // Then the project's own `npm test` does the same without sluice: the
    // SDK package's entry point.
    let out = Command::new("npm")
        .arg("test")
        .current_dir(&plugin)
        .output()
        .unwrap();
    node_tests_passed(&success(out));

    let component = build(&plugin);
    assert_eq!(component, plugin.join("dist/block_test_events.wasm"));
    assert_blocks_test_events(&component, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn scaffold_test_build_and_run_a_python_validator() {
    let dir = temp_dir();
    let plugin = scaffold(&dir, "block-test-events", "validator", "python");
    assert!(plugin.join("block_test_events.py").is_file());
    mentions_no_checkout(&plugin);

    let output = plugin_test(&plugin);
    assert!(output.contains("2 passed"), "{output}");

    let component = build(&plugin);
    assert_eq!(component, plugin.join("dist/block_test_events.wasm"));
    assert_blocks_test_events(&component, &dir);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_other_scaffolds_pass_their_own_tests() {
    let dir = temp_dir();
    for (lang, kind) in [
        ("js", "validator"),
        ("ts", "enricher"),
        ("js", "enricher"),
        ("python", "enricher"),
    ] {
        let plugin = scaffold(&dir, &format!("{lang}-{kind}"), kind, lang);
        let output = plugin_test(&plugin);
        if lang == "python" {
            assert!(output.contains("2 passed"), "{output}");
        } else {
            node_tests_passed(&output);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn new_names_the_command_that_makes_missing_packages() {
    let dir = temp_dir();
    for lang in ["rust", "ts", "python"] {
        let out = sluice()
            .args([
                "plugin",
                "new",
                "x",
                "--kind",
                "validator",
                "--lang",
                lang,
                "--dir",
            ])
            .arg(&dir)
            .env("SLUICE_SDK_DIR", &dir)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("scripts/package-sdks"), "{stderr}");
        assert!(!dir.join("x").exists(), "nothing is left behind");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn build_names_what_a_plugin_directory_lacks() {
    let dir = temp_dir();
    let out = sluice()
        .args(["plugin", "build"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Cargo.toml")
            && stderr.contains("package.json")
            && stderr.contains("sluice.toml"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A plugin that panics writes its message to stderr through WASI before it
/// traps: the run reports the trap, it does not crash (`plugin run` once
/// panicked here, entering the async runtime from within it).
#[test]
fn a_plugin_that_panics_is_reported_not_a_crash() {
    let components = std::env::var_os("SLUICE_PLUGINS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/dist"));
    let dir = temp_dir();
    let events = dir.join("events.json");
    std::fs::write(&events, r#"[{"event": "e", "user_id": "u1"}]"#).unwrap();
    let out = sluice()
        .args(["plugin", "run"])
        .arg(components.join("fixture_trap.wasm"))
        .args(["--kind", "validator", "--config", "{}", "--events"])
        .arg(&events)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("trapped"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
}
