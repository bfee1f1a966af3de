//! Typed configuration: defaults, then a TOML file, then environment variables.
//!
//! Each service owns a `serde` struct with `#[serde(deny_unknown_fields)]`, so a
//! misspelt key in the file or the environment is an error at start-up rather
//! than a silently ignored setting. Environment variables use the service's
//! prefix and `__` between nesting levels: `SLUICE_GATEWAY_KAFKA__BROKERS` sets
//! `kafka.brokers` of the gateway.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Loads `T` from its defaults, an optional TOML file and `prefix`ed variables.
pub fn load<T>(file: Option<&Path>, env_prefix: &str) -> Result<T, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let mut figment = Figment::from(Serialized::defaults(T::default()));
    if let Some(path) = file {
        if !path.is_file() {
            return Err(ConfigError::File {
                path: path.display().to_string(),
                reason: "not found or not a file".to_owned(),
            });
        }
        figment = figment.merge(Toml::file_exact(path));
    }
    // `<PREFIX>CONFIG` names the file (the `--config` flag's variable); it
    // is not a key of the configuration itself.
    figment = figment.merge(Env::prefixed(env_prefix).ignore(&["config"]).split("__"));
    figment.extract().map_err(|err| {
        // figment reports every error with the key path and the provider that
        // supplied it ("... for key `kafka.brokers` in SLUICE_GATEWAY_ ..."),
        // which is exactly what an operator needs to find the bad setting.
        let text = err
            .into_iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ");
        ConfigError::Invalid(text)
    })
}

/// Refuses a setting `key` whose value is not an `http://` or `https://` URL.
pub fn check_http_url(key: &str, url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{key} `{url}` must start with http:// or https://"))
    }
}

/// What a service's `main` should do after reading its configuration.
#[derive(Debug)]
pub enum Next<T> {
    /// Start the service with this configuration.
    Run(T),
    /// `--print-config` or `--check-config` did their job: exit successfully.
    Exit,
}

/// The start-up steps every service shares: load the configuration (defaults,
/// `file`, `env_prefix` variables), validate it before anything connects, and
/// honour `--print-config` / `--check-config`.
pub fn startup<T>(
    file: Option<&Path>,
    env_prefix: &str,
    print_config: bool,
    check_config: bool,
    validate: impl FnOnce(&T) -> Result<(), String>,
) -> Result<Next<T>, ConfigError>
where
    T: Default + Serialize + DeserializeOwned,
{
    let config: T = load(file, env_prefix)?;
    validate(&config).map_err(ConfigError::Invalid)?;
    if print_config {
        print!("{}", to_toml(&config));
        return Ok(Next::Exit);
    }
    if check_config {
        println!("configuration OK");
        return Ok(Next::Exit);
    }
    Ok(Next::Run(config))
}

/// Renders a config as TOML, e.g. for `--print-config`.
pub fn to_toml<T: Serialize>(config: &T) -> String {
    // figment can re-serialise any provider's data; walking its value model
    // keeps us from depending on a second TOML crate.
    match Figment::from(Serialized::defaults(config)).extract::<figment::value::Value>() {
        Ok(value) => render(&value, ""),
        Err(e) => format!("# could not render configuration: {e}\n"),
    }
}

fn render(value: &figment::value::Value, table: &str) -> String {
    use figment::value::Value;
    let Value::Dict(_, dict) = value else {
        return String::new();
    };
    let mut out = String::new();
    let mut nested = Vec::new();
    for (key, value) in dict {
        match value {
            Value::Dict(..) => nested.push((key, value)),
            other => out.push_str(&format!("{key} = {}\n", scalar(other))),
        }
    }
    for (key, value) in nested {
        let name = if table.is_empty() {
            key.clone()
        } else {
            format!("{table}.{key}")
        };
        out.push_str(&format!("\n[{name}]\n"));
        out.push_str(&render(value, &name));
    }
    out
}

fn scalar(value: &figment::value::Value) -> String {
    use figment::value::Value;
    match value {
        Value::String(_, s) => format!("{s:?}"),
        Value::Char(_, c) => format!("\"{c}\""),
        Value::Bool(_, b) => b.to_string(),
        Value::Num(_, n) => n
            .to_u128()
            .map(|v| v.to_string())
            .or_else(|| n.to_i128().map(|v| v.to_string()))
            .or_else(|| n.to_f64().map(|v| v.to_string()))
            .unwrap_or_default(),
        Value::Empty(..) => "\"\"".to_owned(),
        Value::Array(_, items) => {
            let items: Vec<String> = items.iter().map(scalar).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Dict(..) => "{}".to_owned(),
    }
}

/// Every dotted key a config has, for tests that check the `--help` text
/// documents all of them.
/// The keys of `config` that `help` (a service's `--help` key list) does not
/// mention: every service's tests assert this is empty.
pub fn undocumented_keys<T: Serialize>(config: &T, help: &str) -> Vec<String> {
    keys(config)
        .into_iter()
        .filter(|key| !help.contains(key.as_str()))
        .collect()
}

pub fn keys<T: Serialize>(config: &T) -> Vec<String> {
    fn walk(value: &figment::value::Value, prefix: &str, out: &mut Vec<String>) {
        if let figment::value::Value::Dict(_, dict) = value {
            for (key, value) in dict {
                let path = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match value {
                    figment::value::Value::Dict(_, d) if !d.is_empty() => walk(value, &path, out),
                    _ => out.push(path),
                }
            }
        }
    }
    let mut out = Vec::new();
    if let Ok(value) =
        Figment::from(Serialized::defaults(config)).extract::<figment::value::Value>()
    {
        walk(&value, "", &mut out);
    }
    out
}

#[cfg(test)]
// figment's Jail API returns its (large) error type from test closures.
#[allow(clippy::result_large_err)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Sample {
        name: String,
        inner: Inner,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Inner {
        port: u16,
    }

    impl Default for Inner {
        fn default() -> Self {
            Self { port: 7 }
        }
    }

    #[test]
    fn file_then_env_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "name = \"from-file\"\n[inner]\nport = 8\n")?;
            jail.set_env("SAMPLE_INNER__PORT", "9");
            let cfg: Sample = load(Some(Path::new("c.toml")), "SAMPLE_").unwrap();
            assert_eq!(
                cfg,
                Sample {
                    name: "from-file".into(),
                    inner: Inner { port: 9 }
                }
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors_naming_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("c.toml", "nmae = \"typo\"\n")?;
            let err = load::<Sample>(Some(Path::new("c.toml")), "SAMPLE_").unwrap_err();
            assert!(err.to_string().contains("nmae"), "{err}");
            jail.clear_env();
            jail.set_env("SAMPLE_INNER__PORT", "not-a-port");
            let err = load::<Sample>(None, "SAMPLE_").unwrap_err();
            assert!(
                err.to_string().to_lowercase().contains("inner.port"),
                "{err}"
            );
            Ok(())
        });
    }

    #[test]
    fn the_config_file_variable_is_not_a_key() {
        figment::Jail::expect_with(|jail| {
            // `SAMPLE_CONFIG` is the `--config` flag's variable (clap reads it).
            jail.set_env("SAMPLE_CONFIG", "/etc/sluice/sample.toml");
            jail.set_env("SAMPLE_NAME", "from-env");
            let cfg: Sample = load(None, "SAMPLE_").unwrap();
            assert_eq!(cfg.name, "from-env");
            Ok(())
        });
    }

    #[test]
    fn missing_file_is_an_error() {
        let err =
            load::<Sample>(Some(Path::new("/nonexistent/sluice.toml")), "SAMPLE_").unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }));
    }

    #[test]
    fn renders_toml_and_lists_keys() {
        let text = to_toml(&Sample::default());
        assert!(text.contains("name = \"\""), "{text}");
        assert!(text.contains("[inner]\nport = 7"), "{text}");
        assert_eq!(keys(&Sample::default()), vec!["inner.port", "name"]);
        assert_eq!(
            undocumented_keys(&Sample::default(), "name  the name"),
            vec!["inner.port"]
        );
    }
}
