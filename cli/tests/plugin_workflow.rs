//! The plugin developer's loop through the real `sluice` binary: scaffold a
//! validator, build it into a component, run it over sample events.

// Test helpers unwrap: a panic is the failure report we want.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;

fn sluice() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice"));
    // Plugin builds share one cache outside the clone (see plugins/build.sh).
    let cache = std::env::var("SLUICE_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/sluice"));
    command.env("CARGO_TARGET_DIR", cache.join("plugins-target"));
    command
}

#[test]
fn scaffold_build_and_run_a_validator() {
    let dir =
        std::env::temp_dir().join(format!("sluice-scaffold-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let name = format!("block-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    let out = sluice()
        .args(["plugin", "new", &name, "--kind", "validator", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The scaffold passes its own unit tests as generated.
    generated_tests_pass(&dir.join(&name));

    let out = sluice()
        .args(["plugin", "build"])
        .arg(dir.join(&name))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let component = PathBuf::from(stdout.split(" (").next().unwrap().trim());
    assert!(component.is_file(), "{stdout}");

    let events = dir.join("events.json");
    std::fs::write(
        &events,
        r#"[{"event": "Test Event", "user_id": "u1"}, {"event": "Signed Up", "user_id": "u2"}]"#,
    )
    .unwrap();
    let run = |config: &str| {
        sluice()
            .args(["plugin", "run"])
            .arg(&component)
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
        "a rejection fails the run: {stdout}"
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

    let out = run("{}");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let out = run(r#"{"unknown_key": 1}"#);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("configuration"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
    let dir =
        std::env::temp_dir().join(format!("sluice-scaffold-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = sluice()
        .args(["plugin", "new", "tag-env", "--kind", "enricher", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    generated_tests_pass(&dir.join("tag-env"));
    std::fs::remove_dir_all(&dir).unwrap();
}
