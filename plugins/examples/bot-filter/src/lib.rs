//! Validator: rejects events whose user agent looks like a bot.
//!
//! Configuration (every key optional):
//! `{"user_agent_patterns": ["bot", "crawler", "spider", "HeadlessChrome"], "case_insensitive": true}`
//!
//! The user agent is `context.user_agent`, else `properties.$user_agent`
//! (both are checked). A pattern is a plain substring (no regular
//! expressions: they would add hundreds of kilobytes to the component).
//! Matching events are rejected with code `bot_traffic`. An empty pattern
//! list disables the filter.

use sluice_plugin_sdk::{
    Event, PluginError, Validator, Value, Verdict, export_validator, parse_config,
};

/// The patterns used when the configuration names none.
pub const DEFAULT_PATTERNS: &[&str] = &[
    "bot",
    "crawler",
    "spider",
    "HeadlessChrome",
    "PhantomJS",
    "Slurp",
    "facebookexternalhit",
];

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
struct Config {
    user_agent_patterns: Vec<String>,
    case_insensitive: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            user_agent_patterns: DEFAULT_PATTERNS.iter().map(|p| (*p).to_owned()).collect(),
            case_insensitive: true,
        }
    }
}

/// The plugin.
#[derive(Debug)]
pub struct BotFilter {
    /// As configured (for messages).
    patterns: Vec<String>,
    /// What is searched for: lower-cased when matching ignores case.
    needles: Vec<String>,
    case_insensitive: bool,
}

impl Validator for BotFilter {
    fn init(config: &str) -> Result<Self, PluginError> {
        let Config {
            user_agent_patterns: patterns,
            case_insensitive,
        } = parse_config(config)?;
        if patterns.iter().any(String::is_empty) {
            return Err(PluginError::invalid_config(
                "`user_agent_patterns` must not contain an empty pattern (it would match everything)",
            ));
        }
        let needles = patterns
            .iter()
            .map(|p| {
                if case_insensitive {
                    p.to_lowercase()
                } else {
                    p.clone()
                }
            })
            .collect();
        Ok(Self {
            patterns,
            needles,
            case_insensitive,
        })
    }

    fn validate(&self, events: Vec<Event>) -> Vec<Verdict> {
        events.iter().map(|event| self.check(event)).collect()
    }
}

impl BotFilter {
    /// The verdict for one event.
    pub fn check(&self, event: &Event) -> Verdict {
        let from_context = event
            .context
            .as_deref()
            .and_then(|raw| self.user_agent_in(raw, "user_agent"));
        let found = from_context.or_else(|| self.user_agent_in(&event.properties, "$user_agent"));
        match found {
            Some(pattern) => Verdict::reject(
                "bot_traffic",
                format!("the user agent matches the bot pattern `{pattern}`"),
            ),
            None => Verdict::accept(),
        }
    }

    /// The first pattern matching the string member `key` of the JSON object
    /// `raw`. Cheap path: when no pattern occurs anywhere in the raw text (and
    /// no escape could hide one) the text is not parsed.
    fn user_agent_in(&self, raw: &str, key: &str) -> Option<&str> {
        if self.needles.is_empty() || (!raw.contains('\\') && self.matching(raw).is_none()) {
            return None;
        }
        let object: sluice_plugin_sdk::JsonObject =
            sluice_plugin_sdk::serde_json::from_str(raw).ok()?;
        match object.get(key) {
            Some(Value::String(user_agent)) => self.matching(user_agent),
            _ => None,
        }
    }

    fn matching(&self, haystack: &str) -> Option<&str> {
        let lowered;
        let haystack = if self.case_insensitive {
            lowered = haystack.to_lowercase();
            &lowered
        } else {
            haystack
        };
        self.needles
            .iter()
            .position(|needle| haystack.contains(needle.as_str()))
            .map(|i| self.patterns[i].as_str())
    }
}

export_validator!(BotFilter);

#[cfg(test)]
mod tests {
    use super::*;

    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
    const FIREFOX: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

    fn with_context_ua(ua: &str) -> Event {
        Event::new("Page Viewed")
            .with_context("user_agent", ua)
            .unwrap()
    }

    fn with_property_ua(ua: &str) -> Event {
        Event::new("Page Viewed")
            .with_property("$user_agent", ua)
            .unwrap()
    }

    #[test]
    fn defaults_reject_common_bots_and_accept_browsers() {
        let plugin = BotFilter::init("{}").unwrap();
        let verdicts = plugin.validate(vec![
            with_context_ua(GOOGLEBOT),
            with_context_ua(HEADLESS),
            with_property_ua("Baiduspider/2.0"),
            with_context_ua(FIREFOX),
            Event::new("No Context"),
        ]);
        let codes: Vec<_> = verdicts.iter().map(Verdict::reject_code).collect();
        assert_eq!(
            codes,
            [
                Some("bot_traffic"),
                Some("bot_traffic"),
                Some("bot_traffic"),
                None,
                None
            ]
        );
        assert_eq!(
            verdicts[1],
            Verdict::reject(
                "bot_traffic",
                "the user agent matches the bot pattern `HeadlessChrome`"
            )
        );
    }

    #[test]
    fn only_the_user_agent_members_are_checked() {
        let plugin = BotFilter::init("").unwrap();
        let event = Event::new("Robot Built")
            .with_property("kind", "bot")
            .unwrap()
            .with_context("page", "/spider-man")
            .unwrap()
            .with_context("user_agent", FIREFOX)
            .unwrap();
        assert_eq!(plugin.validate(vec![event]), vec![Verdict::accept()]);
    }

    #[test]
    fn case_sensitivity_is_configurable() {
        let sensitive = BotFilter::init(
            r#"{"user_agent_patterns": ["HeadlessChrome"], "case_insensitive": false}"#,
        )
        .unwrap();
        assert!(!sensitive.check(&with_context_ua(HEADLESS)).is_accept());
        assert!(
            sensitive
                .check(&with_context_ua("headlesschrome/1"))
                .is_accept()
        );

        let insensitive =
            BotFilter::init(r#"{"user_agent_patterns": ["HEADLESSCHROME"]}"#).unwrap();
        assert!(
            !insensitive
                .check(&with_context_ua("headlesschrome/1"))
                .is_accept()
        );
    }

    #[test]
    fn escaped_user_agents_are_parsed() {
        let plugin = BotFilter::init("{}").unwrap();
        let event = Event {
            context: Some(r#"{"user_agent": "Google\u0062ot/2.1"}"#.to_owned()),
            ..Event::new("x")
        };
        assert!(!plugin.check(&event).is_accept());
    }

    #[test]
    fn empty_pattern_list_accepts_everything() {
        let plugin = BotFilter::init(r#"{"user_agent_patterns": []}"#).unwrap();
        assert!(plugin.check(&with_context_ua(GOOGLEBOT)).is_accept());
    }

    #[test]
    fn bad_configs_are_invalid_config() {
        for bad in [
            r#"{"user_agent_patterns": [""]}"#,
            r#"{"user_agent_patterns": "bot"}"#,
            r#"{"case_insensitive": "yes"}"#,
            r#"{"patterns": ["bot"]}"#,
        ] {
            assert!(
                matches!(BotFilter::init(bad), Err(PluginError::InvalidConfig(_))),
                "{bad}"
            );
        }
    }
}
