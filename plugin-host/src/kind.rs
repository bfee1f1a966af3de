//! Which world a component implements: the one piece of the plugin model
//! that tools without the runtime (the CLI's scaffolding, admin clients)
//! need, so it builds without wasmtime.

use serde::{Deserialize, Serialize};

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PluginKind {
    Validator,
    Enricher,
}

impl PluginKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Validator => "validator",
            Self::Enricher => "enricher",
        }
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;

    fn from_str(kind: &str) -> Result<Self, Self::Err> {
        match kind {
            "validator" => Ok(Self::Validator),
            "enricher" => Ok(Self::Enricher),
            other => Err(format!(
                "unknown plugin kind `{other}`: use validator or enricher"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in [PluginKind::Validator, PluginKind::Enricher] {
            assert_eq!(kind.as_str().parse::<PluginKind>(), Ok(kind));
        }
        assert!("filter".parse::<PluginKind>().is_err());
    }
}
