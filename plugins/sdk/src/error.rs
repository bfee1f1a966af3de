//! [`PluginError`] and [`parse_config`].

use std::fmt;

use serde::de::DeserializeOwned;

/// Errors a plugin reports as values from `init` (WIT variant `plugin-error`).
/// Traps (panics) are host faults, not these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginError {
    /// The team's configuration for this plugin is unusable.
    InvalidConfig(String),
    /// Anything else.
    Other(String),
}

impl PluginError {
    /// The configuration is unusable, because of `message`.
    pub fn invalid_config(message: impl fmt::Display) -> Self {
        Self::InvalidConfig(message.to_string())
    }

    /// Any other failure.
    pub fn other(message: impl fmt::Display) -> Self {
        Self::Other(message.to_string())
    }
}

impl fmt::Display for PluginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(message) => write!(f, "invalid configuration: {message}"),
            Self::Other(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for PluginError {}

/// Parses the JSON configuration passed to `init` into `T`.
///
/// An empty (or all-whitespace) configuration is read as `{}`, so a `T` whose
/// fields all have `#[serde(default)]` accepts "no configuration". Add
/// `#[serde(deny_unknown_fields)]` to `T` to catch misspelt keys.
///
/// # Errors
/// [`PluginError::InvalidConfig`] with serde's message (which names the
/// offending field and position).
pub fn parse_config<T: DeserializeOwned>(config: &str) -> Result<T, PluginError> {
    let config = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    serde_json::from_str(config).map_err(PluginError::invalid_config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Config {
        #[serde(default)]
        level: u32,
    }

    #[test]
    fn empty_config_is_an_empty_object() {
        assert_eq!(parse_config::<Config>("").unwrap(), Config { level: 0 });
        assert_eq!(parse_config::<Config>(" {} ").unwrap(), Config { level: 0 });
        assert_eq!(
            parse_config::<Config>(r#"{"level": 3}"#).unwrap(),
            Config { level: 3 }
        );
    }

    #[test]
    fn bad_config_is_invalid_config() {
        let error = parse_config::<Config>(r#"{"levle": 3}"#).unwrap_err();
        assert!(matches!(&error, PluginError::InvalidConfig(m) if m.contains("levle")));
        assert!(error.to_string().starts_with("invalid configuration: "));
        assert!(parse_config::<Config>("not json").is_err());
    }
}
