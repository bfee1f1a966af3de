//! `sluice plugin new`: a plugin directory that builds and passes its own
//! unit tests as generated, from the templates in `templates/<lang>/`
//! (`{{key}}` placeholders, filled by [`render`]).
//!
//! Each refers to its SDK by version and carries the shipped package in
//! `vendor/` (why: the module docs of [`super`]).
//!
//! | language | files |
//! |---|---|
//! | rust | `Cargo.toml` (`sluice-plugin-sdk = "V"`, patched to `vendor/sluice-plugin-sdk-V/`), `src/lib.rs` with its tests, `.gitignore` |
//! | ts | `package.json` (`"sluice": {"world": ...}`, `sluice-plugin` from `vendor/sluice-plugin-V.tgz`), `package-lock.json`, `src/index.ts`, `test/index.test.ts`, `tsconfig.json` and `test/tsconfig.json`, `.gitignore` |
//! | js | the same with `src/index.js`, `test/index.test.js`, `jsconfig.json` |
//! | python | `sluice.toml` (`world = ...`), `requirements.txt` (the vendored wheel and the toolchain, hashed), `<name_with_underscores>.py`, `test_<name_with_underscores>.py`, `.gitignore` |
//!
//! Nothing written names the machine it was made on: a project moves to
//! any other machine (or CI) as it is.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use sluice_plugin_host::PluginKind;

use super::{Lang, SDK_VERSION, Toolchain, package_file, sdk_dir};

macro_rules! template {
    ($path:literal) => {
        include_str!(concat!("templates/", $path, ".tmpl"))
    };
}

/// Python keywords: not usable as the name of the plugin's module.
const PYTHON_KEYWORDS: &[&str] = &[
    "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del", "elif",
    "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda",
    "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];

/// Where the scaffold's SDK comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sdk {
    /// The shipped packages in this directory ([`sdk_dir`]), vendored.
    Packages(PathBuf),
    /// The Rust SDK's sources, by absolute path: only for developing the
    /// SDK itself (`--sdk plugins/sdk`); such a project builds only here.
    RustSources(PathBuf),
}

/// Creates `dir/name` with a plugin of `kind` in `lang`, on the SDK
/// packages found by [`sdk_dir`] (`sdk`: the `--sdk` override). On failure
/// nothing is left behind.
pub fn scaffold(
    dir: &Path,
    name: &str,
    kind: PluginKind,
    lang: Lang,
    sdk: Option<&Path>,
) -> anyhow::Result<PathBuf> {
    check_name(name, lang)?;
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let toolchain = lang.toolchain();
    let sdk = match sdk {
        Some(path) if toolchain == Toolchain::Rust && path.join("Cargo.toml").is_file() => {
            Sdk::RustSources(
                path.canonicalize()
                    .with_context(|| format!("reading {}", path.display()))?,
            )
        }
        _ => Sdk::Packages(sdk_dir(toolchain, sdk)?),
    };
    let written = write(&root, name, kind, lang, &sdk);
    if written.is_err() {
        // Best effort: the error being reported matters more.
        let _ = std::fs::remove_dir_all(&root);
    }
    written.map(|()| root)
}

fn write(root: &Path, name: &str, kind: PluginKind, lang: Lang, sdk: &Sdk) -> anyhow::Result<()> {
    let values = values(name, kind, lang, sdk)?;
    for (path, template) in files(lang, kind) {
        let path = root.join(render(path, &values));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(template, &values))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Sdk::Packages(packages) = sdk {
        vendor(root, name, lang.toolchain(), packages)?;
    }
    Ok(())
}

/// Copies the SDK package into `root/vendor/`, with what pins it.
fn vendor(root: &Path, name: &str, toolchain: Toolchain, packages: &Path) -> anyhow::Result<()> {
    let vendor = root.join("vendor");
    std::fs::create_dir_all(&vendor).with_context(|| format!("creating {}", vendor.display()))?;
    let package = packages.join(package_file(toolchain));
    let copy = |from: &Path, to: &Path| {
        std::fs::copy(from, to)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))
    };
    match toolchain {
        // Unpacked: `[patch]` takes a directory. The archive is a .tar.gz
        // (`cargo package`), which every system with cargo can unpack.
        Toolchain::Rust => {
            let status = Command::new("tar")
                .arg("-xzf")
                .arg(&package)
                .arg("-C")
                .arg(&vendor)
                .status()
                .context("running tar (needed to unpack the SDK crate)")?;
            let unpacked = vendor.join(format!("sluice-plugin-sdk-{SDK_VERSION}/Cargo.toml"));
            if !status.success() || !unpacked.is_file() {
                bail!(
                    "could not unpack {} into {}",
                    package.display(),
                    vendor.display()
                );
            }
        }
        Toolchain::Js => {
            copy(&package, &vendor.join(package_file(toolchain)))?;
            // The lockfile was made for a project named `sluice-plugin-project`
            // with exactly this package.json's dependency (scripts/package-sdks).
            let lock = packages.join(format!("sluice-plugin-{SDK_VERSION}-package-lock.json"));
            let text = std::fs::read_to_string(&lock)
                .with_context(|| format!("reading {}", lock.display()))?;
            let renamed = text.replace(
                "\"name\": \"sluice-plugin-project\"",
                &format!("\"name\": {}", serde_json::to_string(name)?),
            );
            std::fs::write(root.join("package-lock.json"), renamed)
                .with_context(|| format!("writing {}", root.join("package-lock.json").display()))?;
        }
        Toolchain::Python => {
            copy(&package, &vendor.join(package_file(toolchain)))?;
            let requirements =
                packages.join(format!("sluice_plugin-{SDK_VERSION}-requirements.txt"));
            copy(&requirements, &root.join("requirements.txt"))?;
        }
    }
    Ok(())
}

fn check_name(name: &str, lang: Lang) -> anyhow::Result<()> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        bail!(
            "plugin name must be lowercase letters, digits and `-`, starting with a letter \
             (e.g. `my-validator`)"
        );
    }
    if lang == Lang::Python {
        let module = name.replace('-', "_");
        // The SDK's export classes live in the plugin's module too.
        if PYTHON_KEYWORDS.contains(&module.as_str()) || ["validate", "enrich"].contains(&name) {
            bail!("`{name}` cannot name a Python plugin's module; choose another name");
        }
    }
    Ok(())
}

/// The placeholders' values. Paths are JSON strings, quotes included:
/// valid as they are in JSON and TOML.
fn values(
    name: &str,
    kind: PluginKind,
    lang: Lang,
    sdk: &Sdk,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let mut values = vec![
        ("name", name.to_owned()),
        ("module", name.replace('-', "_")),
        ("type_name", type_name(name)),
        ("kind", kind.as_str().to_owned()),
        ("sdk_version", SDK_VERSION.to_owned()),
    ];
    if lang == Lang::Rust {
        let path = match sdk {
            Sdk::Packages(_) => format!("vendor/sluice-plugin-sdk-{SDK_VERSION}"),
            Sdk::RustSources(path) => path
                .to_str()
                .with_context(|| format!("{} is not UTF-8", path.display()))?
                .to_owned(),
        };
        values.push(("sdk_patch", serde_json::to_string(&path)?));
    }
    Ok(values)
}

/// `block-test-events` → `BlockTestEvents`.
fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The scaffold's files: (path in the plugin directory, template).
fn files(lang: Lang, kind: PluginKind) -> Vec<(&'static str, &'static str)> {
    let pick = |validator, enricher| match kind {
        PluginKind::Validator => validator,
        PluginKind::Enricher => enricher,
    };
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", template!("rust/Cargo.toml")),
            (".gitignore", template!("rust/gitignore")),
            (
                "src/lib.rs",
                pick(
                    template!("rust/validator.rs"),
                    template!("rust/enricher.rs"),
                ),
            ),
        ],
        Lang::TypeScript => vec![
            ("package.json", template!("js/package.json")),
            (".gitignore", template!("js/gitignore")),
            ("tsconfig.json", template!("ts/tsconfig.json")),
            ("test/tsconfig.json", template!("ts/test-tsconfig.json")),
            (
                "src/index.ts",
                pick(template!("ts/validator.ts"), template!("ts/enricher.ts")),
            ),
            (
                "test/index.test.ts",
                pick(
                    template!("ts/validator.test.ts"),
                    template!("ts/enricher.test.ts"),
                ),
            ),
        ],
        Lang::JavaScript => vec![
            ("package.json", template!("js/package.json")),
            (".gitignore", template!("js/gitignore")),
            ("jsconfig.json", template!("js/jsconfig.json")),
            (
                "src/index.js",
                pick(template!("js/validator.js"), template!("js/enricher.js")),
            ),
            (
                "test/index.test.js",
                pick(
                    template!("js/validator.test.js"),
                    template!("js/enricher.test.js"),
                ),
            ),
        ],
        Lang::Python => vec![
            ("sluice.toml", template!("python/sluice.toml")),
            (".gitignore", template!("python/gitignore")),
            (
                "{{module}}.py",
                pick(
                    template!("python/validator.py"),
                    template!("python/enricher.py"),
                ),
            ),
            (
                "test_{{module}}.py",
                pick(
                    template!("python/test_validator.py"),
                    template!("python/test_enricher.py"),
                ),
            ),
        ],
    }
}

/// `template` with each `{{key}}` of `values` replaced by its value, in one
/// pass (a value is never read for placeholders); other text stays as is.
fn render(template: &str, values: &[(&str, String)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let known = after.find("}}").and_then(|end| {
            let key = &after[..end];
            values
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, value)| (end, value))
        });
        match known {
            Some((end, value)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const LANGS: [Lang; 4] = [Lang::Rust, Lang::TypeScript, Lang::JavaScript, Lang::Python];
    const KINDS: [PluginKind; 2] = [PluginKind::Validator, PluginKind::Enricher];

    #[test]
    fn every_placeholder_of_every_template_is_filled() {
        let placeholder = |text: &str| {
            text.match_indices("{{").any(|(i, _)| {
                let rest = &text[i + 2..];
                let end = rest.find("}}").unwrap_or(0);
                end > 0
                    && rest[..end]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_')
            })
        };
        let sdk = Sdk::Packages(PathBuf::from("/sdk dir"));
        for lang in LANGS {
            for kind in KINDS {
                let values = values("my-plugin", kind, lang, &sdk).unwrap();
                for (path, template) in files(lang, kind) {
                    let (path, text) = (render(path, &values), render(template, &values));
                    assert!(
                        !placeholder(&path) && !placeholder(&text),
                        "{lang:?} {path}"
                    );
                    // The project moves between machines as it is.
                    assert!(!text.contains("/sdk dir"), "{lang:?} {path}");
                }
            }
        }
    }

    #[test]
    fn values_are_not_rendered_again_and_paths_are_quoted() {
        let fixed = [("a", "{{b}}".to_owned()), ("b", "x".to_owned())];
        assert_eq!(render("{{a}} {{b}} {{c}} {{", &fixed), "{{b}} x {{c}} {{");
        let sources = Sdk::RustSources(PathBuf::from("/s \"q\""));
        let rendered = values("x", PluginKind::Validator, Lang::Rust, &sources).unwrap();
        let patch = &rendered.iter().find(|(k, _)| *k == "sdk_patch").unwrap().1;
        assert_eq!(patch, r#""/s \"q\"""#);
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(type_name("block-test-events"), "BlockTestEvents");
        for bad in ["", "My", "1abc", "-a", "a_b", "a b"] {
            assert!(check_name(bad, Lang::Rust).is_err(), "{bad}");
        }
        assert!(check_name("a-1", Lang::Rust).is_ok());
        assert!(check_name("validate", Lang::Rust).is_ok());
        for bad in ["validate", "enrich", "import"] {
            assert!(check_name(bad, Lang::Python).is_err(), "{bad}");
        }
    }
}
