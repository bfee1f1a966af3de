//! `sluice plugin new`: a plugin directory that builds and passes its own
//! unit tests as generated, from the templates in `templates/<lang>/`
//! (`{{key}}` placeholders, filled by [`render`]).
//!
//! | language | files |
//! |---|---|
//! | rust | `Cargo.toml` (the SDK crate by path), `src/lib.rs` with its tests |
//! | ts | `package.json` (`"sluice": {"world": ...}`), `src/index.ts`, `test/index.test.ts`, `tsconfig.json` and `test/tsconfig.json` (`sluice-plugin` = the SDK by path), `.gitignore` |
//! | js | the same with `src/index.js`, `test/index.test.js`, `jsconfig.json` |
//! | python | `sluice.toml` (`world = ...`), `<name_with_underscores>.py`, `test_<name_with_underscores>.py`, `conftest.py` (the SDK on pytest's path), `.gitignore` |

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use sluice_plugin_host::PluginKind;

use super::{Lang, Toolchain};

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

/// Creates `dir/name` with a plugin of `kind` in `lang` on the SDK at `sdk`
/// (for TypeScript and JavaScript the repository's `plugins/js`, for Python
/// its `plugins/python`).
pub fn scaffold(
    dir: &Path,
    name: &str,
    kind: PluginKind,
    lang: Lang,
    sdk: &Path,
) -> anyhow::Result<PathBuf> {
    check_name(name, lang)?;
    let root = dir.join(name);
    if root.exists() {
        bail!("{} already exists", root.display());
    }
    let sdk = find_sdk(lang.toolchain(), sdk)?;
    let values = values(name, kind, lang, &sdk)?;
    for (path, template) in files(lang, kind) {
        let path = root.join(render(path, &values));
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, render(template, &values))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(root)
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

/// The SDK directory, absolute, after checking it holds what `toolchain` needs.
fn find_sdk(toolchain: Toolchain, sdk: &Path) -> anyhow::Result<PathBuf> {
    let (what, marker) = match toolchain {
        Toolchain::Rust => ("the Rust guest SDK (crate sluice-plugin-sdk)", "Cargo.toml"),
        Toolchain::Js => ("the TypeScript/JavaScript SDK", "sdk/index.ts"),
        Toolchain::Python => ("the Python SDK", "sdk/sluice_plugin/__init__.py"),
    };
    let found = sdk
        .canonicalize()
        .ok()
        .filter(|dir| dir.join(marker).is_file());
    found.with_context(|| {
        format!(
            "{what} is not at {} (no {marker}): pass --sdk, or set SLUICE_REPO to a Sluice repository",
            sdk.display()
        )
    })
}

/// The placeholders' values. Paths are JSON strings, quotes included:
/// valid as they are in JSON, TOML, TypeScript and Python.
fn values(
    name: &str,
    kind: PluginKind,
    lang: Lang,
    sdk: &Path,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let quoted = |path: PathBuf| -> anyhow::Result<String> {
        let text = path
            .to_str()
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        Ok(serde_json::to_string(text)?)
    };
    let mut values = vec![
        ("name", name.to_owned()),
        ("module", name.replace('-', "_")),
        ("type_name", type_name(name)),
        ("kind", kind.as_str().to_owned()),
    ];
    match lang.toolchain() {
        Toolchain::Rust => values.push(("sdk", quoted(sdk.to_owned())?)),
        Toolchain::Js => {
            values.push(("sdk_index", quoted(sdk.join("sdk/index.ts"))?));
            values.push(("sdk_host", quoted(sdk.join("sdk/host.d.ts"))?));
            values.push(("type_roots", quoted(sdk.join("node_modules/@types"))?));
        }
        Toolchain::Python => values.push(("sdk", quoted(sdk.join("sdk"))?)),
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
            ("conftest.py", template!("python/conftest.py")),
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
        for lang in LANGS {
            for kind in KINDS {
                let values = values("my-plugin", kind, lang, Path::new("/sdk dir/\"x\"")).unwrap();
                for (path, template) in files(lang, kind) {
                    let (path, text) = (render(path, &values), render(template, &values));
                    assert!(
                        !placeholder(&path) && !placeholder(&text),
                        "{lang:?} {path}"
                    );
                }
            }
        }
    }

    #[test]
    fn paths_are_quoted_and_values_are_not_rendered_again() {
        let values = [("a", "{{b}}".to_owned()), ("b", "x".to_owned())];
        assert_eq!(render("{{a}} {{b}} {{c}} {{", &values), "{{b}} x {{c}} {{");
        let values = values_for(Lang::Python);
        let sdk = &values.iter().find(|(k, _)| *k == "sdk").unwrap().1;
        assert_eq!(sdk, r#""/s \"q\"/sdk""#);
    }

    fn values_for(lang: Lang) -> Vec<(&'static str, String)> {
        values("x", PluginKind::Validator, lang, Path::new("/s \"q\"")).unwrap()
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
