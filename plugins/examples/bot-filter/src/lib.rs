//! Validator: rejects events whose user agent looks like a bot.
//!
//! Configuration (every key optional):
//! `{"user_agent_patterns": ["bot", "crawler", "spider", "HeadlessChrome"], "case_insensitive": true}`
//!
//! The user agent is `context.user_agent`, else `properties.$user_agent`
//! (both are checked). A pattern is a plain substring (no regular
//! expressions: they would add hundreds of kilobytes to the component).
//! Only those two members are looked at: the raw JSON is scanned for them
//! (no value tree is built) and only their values are searched, with ASCII
//! case folding in place (no lower-cased copy) unless they are not ASCII.
//! Matching events are rejected with code `bot_traffic`. An empty pattern
//! list disables the filter.

use sluice_plugin_sdk::{
    Event, Fields, PluginError, Validator, Verdict, export_validator, parse_config, scan,
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
    /// For each byte, the needles (bit i: `needles[i]`, the first 64) that
    /// start with it (either case when matching ignores case), and those
    /// whose second byte it is (all one-byte needles too): two look-ups per
    /// byte of the user agent find the few places where a match may start.
    first: Box<[u64; 256]>,
    second: Box<[u64; 256]>,
}

impl Validator for BotFilter {
    const FIELDS: Fields = Fields::CONTEXT.union(Fields::PROPERTIES);

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
        let needles: Vec<String> = patterns
            .iter()
            .map(|p| {
                if case_insensitive {
                    p.to_lowercase()
                } else {
                    p.clone()
                }
            })
            .collect();
        let mut first = Box::new([0u64; 256]);
        let mut second = Box::new([0u64; 256]);
        for (i, needle) in needles.iter().enumerate().take(64) {
            let bit = 1 << i;
            let mark = |table: &mut [u64; 256], byte: u8| {
                table[usize::from(byte)] |= bit;
                if case_insensitive {
                    table[usize::from(byte.to_ascii_uppercase())] |= bit;
                }
            };
            match *needle.as_bytes() {
                [b0] => {
                    mark(&mut first, b0);
                    second.iter_mut().for_each(|entry| *entry |= bit);
                }
                [b0, b1, ..] => {
                    mark(&mut first, b0);
                    mark(&mut second, b1);
                }
                [] => {} // refused above
            }
        }
        Ok(Self {
            patterns,
            needles,
            case_insensitive,
            first,
            second,
        })
    }

    fn validate(&self, event: &Event<'_>) -> Verdict {
        if self.needles.is_empty() {
            return Verdict::accept();
        }
        let from_context = event
            .context()
            .and_then(|raw| self.user_agent_in(raw, "user_agent"));
        // `$user_agent` is rarely in the properties: a quick look for the
        // key's text usually saves scanning them.
        let found = from_context.or_else(|| {
            let properties = event.properties();
            scan::may_contain_key(properties, "$user_agent")
                .then(|| self.user_agent_in(properties, "$user_agent"))
                .flatten()
        });
        match found {
            Some(pattern) => Verdict::reject(
                "bot_traffic",
                format!("the user agent matches the bot pattern `{pattern}`"),
            ),
            None => Verdict::accept(),
        }
    }
}

impl BotFilter {
    /// The first pattern matching the string member `key` of the JSON object
    /// `raw` (the last such member, as when parsing; none when `raw` is not
    /// an object).
    fn user_agent_in(&self, raw: &str, key: &str) -> Option<&str> {
        let value = scan::find_member(raw, key).ok()??;
        let user_agent = value.as_str()?.decode();
        self.matching(&user_agent)
    }

    /// The first pattern (in configured order) that occurs in `haystack`.
    fn matching(&self, haystack: &str) -> Option<&str> {
        let index = if !self.case_insensitive || haystack.is_ascii() {
            // ASCII folding is `to_lowercase` for ASCII text; a needle with
            // other characters cannot match it either way.
            self.find(haystack.as_bytes())
        } else {
            // Full Unicode lower-casing (e.g. `K`, the Kelvin sign, is `k`).
            let lowered = haystack.to_lowercase();
            self.needles
                .iter()
                .position(|needle| lowered.contains(needle.as_str()))
        };
        index.map(|i| self.patterns[i].as_str())
    }

    /// The lowest index of a needle occurring in `haystack` (ASCII case
    /// folded when matching ignores case), without copying it.
    fn find(&self, haystack: &[u8]) -> Option<usize> {
        let same = |window: &[u8], needle: &[u8]| {
            if self.case_insensitive {
                window.eq_ignore_ascii_case(needle)
            } else {
                window == needle
            }
        };
        let mut found: u64 = 0;
        let check = |at: usize, candidates: u64, found: &mut u64| {
            let mut candidates = candidates & !*found;
            while candidates != 0 {
                let i = candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                let needle = self.needles[i].as_bytes();
                if haystack
                    .get(at..at + needle.len())
                    .is_some_and(|window| same(window, needle))
                {
                    *found |= 1 << i;
                }
            }
        };
        let candidates_at = |pair: &[u8]| match *pair {
            [b0, b1] => self.first[usize::from(b0)] & self.second[usize::from(b1)],
            _ => 0,
        };
        // Eight start positions at a time: most have no candidate at all.
        let mut at = 0;
        while let Some(window) = haystack.get(at..at + 9) {
            let any = window
                .windows(2)
                .fold(0, |any, pair| any | candidates_at(pair));
            if any & !found != 0 {
                for (k, pair) in window.windows(2).enumerate() {
                    check(at + k, candidates_at(pair), &mut found);
                }
                if found & 1 != 0 {
                    break; // the first needle: nothing can come before it
                }
            }
            at += 8;
        }
        if found & 1 == 0 {
            for at in at..haystack.len() {
                let next = haystack
                    .get(at + 1)
                    .map_or(u64::MAX, |&b| self.second[usize::from(b)]);
                check(at, self.first[usize::from(haystack[at])] & next, &mut found);
            }
        }
        if found != 0 {
            return Some(found.trailing_zeros() as usize);
        }
        // Needles past the first 64 (rare): one search each.
        self.needles
            .iter()
            .enumerate()
            .skip(64)
            .find_map(|(i, needle)| {
                let needle = needle.as_bytes();
                haystack
                    .windows(needle.len())
                    .any(|window| same(window, needle))
                    .then_some(i)
            })
    }
}

export_validator!(BotFilter);

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_plugin_sdk::{Batch, EventBuf};

    const GOOGLEBOT: &str =
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
    const FIREFOX: &str =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

    fn with_context_ua(ua: &str) -> EventBuf {
        EventBuf::new("Page Viewed").with_context_member("user_agent", ua)
    }

    fn with_property_ua(ua: &str) -> EventBuf {
        EventBuf::new("Page Viewed").with_property("$user_agent", ua)
    }

    /// The verdicts for `events`, sent as the host sends them to this
    /// plugin (only its `FIELDS`).
    fn run(plugin: &BotFilter, events: Vec<EventBuf>) -> Vec<Verdict> {
        Batch::encode(&events, BotFilter::FIELDS).validate_with(plugin)
    }

    /// The verdict for one event (sent as above).
    fn check(plugin: &BotFilter, event: &EventBuf) -> Verdict {
        let batch = Batch::encode([event], BotFilter::FIELDS);
        plugin.validate(&batch.iter().next().expect("one event"))
    }

    #[test]
    fn defaults_reject_common_bots_and_accept_browsers() {
        let plugin = BotFilter::init("{}").unwrap();
        let verdicts = run(
            &plugin,
            vec![
                with_context_ua(GOOGLEBOT),
                with_context_ua(HEADLESS),
                with_property_ua("Baiduspider/2.0"),
                with_context_ua(FIREFOX),
                EventBuf::new("No Context"),
            ],
        );
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
        let event = EventBuf::new("Robot Built")
            .with_property("kind", "bot")
            .with_context_member("page", "/spider-man")
            .with_context_member("user_agent", FIREFOX);
        assert_eq!(run(&plugin, vec![event]), vec![Verdict::accept()]);
    }

    #[test]
    fn case_sensitivity_is_configurable() {
        let sensitive = BotFilter::init(
            r#"{"user_agent_patterns": ["HeadlessChrome"], "case_insensitive": false}"#,
        )
        .unwrap();
        assert!(!check(&sensitive, &with_context_ua(HEADLESS)).is_accept());
        assert!(check(&sensitive, &with_context_ua("headlesschrome/1")).is_accept());

        let insensitive =
            BotFilter::init(r#"{"user_agent_patterns": ["HEADLESSCHROME"]}"#).unwrap();
        assert!(!check(&insensitive, &with_context_ua("headlesschrome/1")).is_accept());
    }

    #[test]
    fn escaped_user_agents_are_parsed() {
        let plugin = BotFilter::init("{}").unwrap();
        let event = EventBuf::new("x").with_context(r#"{"user_agent": "Google\u0062ot/2.1"}"#);
        assert!(!check(&plugin, &event).is_accept());
    }

    #[test]
    fn the_first_configured_pattern_is_named() {
        let plugin =
            BotFilter::init(r#"{"user_agent_patterns": ["Spider", "crawl", "bot"]}"#).unwrap();
        assert_eq!(
            check(&plugin, &with_context_ua("a bot, a Crawler and a spider")),
            Verdict::reject(
                "bot_traffic",
                "the user agent matches the bot pattern `Spider`"
            )
        );
        assert_eq!(
            check(&plugin, &with_context_ua("BOT then CRAWLER")),
            Verdict::reject(
                "bot_traffic",
                "the user agent matches the bot pattern `crawl`"
            )
        );
        // A match ending at the last byte, and a needle cut off by the end.
        assert!(!check(&plugin, &with_context_ua("xbot")).is_accept());
        assert!(check(&plugin, &with_context_ua("xbo")).is_accept());
    }

    #[test]
    fn properties_are_checked_when_the_context_has_no_match() {
        let plugin = BotFilter::init("{}").unwrap();
        let event = with_property_ua(GOOGLEBOT).with_context_member("user_agent", FIREFOX);
        assert!(!check(&plugin, &event).is_accept());
        // Not in nested objects, and the last of repeated keys counts.
        for (properties, accepted) in [
            (r#"{"nested": {"$user_agent": "Googlebot"}}"#, true),
            (
                r#"{"$user_agent": "Googlebot", "$user_agent": "Firefox"}"#,
                true,
            ),
            (
                r#"{"$user_agent": "Firefox", "$user_agent": "Googlebot"}"#,
                false,
            ),
            (r#"{"$user_agent": ["Googlebot"]}"#, true),
            (r#"{"$user_agent": "Googlebot""#, true),
        ] {
            let event = EventBuf::new("x").with_properties(properties);
            assert_eq!(check(&plugin, &event).is_accept(), accepted, "{properties}");
        }
    }

    #[test]
    fn unicode_user_agents_are_lower_cased_fully() {
        let plugin = BotFilter::init(r#"{"user_agent_patterns": ["kit", "ünï"]}"#).unwrap();
        // U+212A KELVIN SIGN lower-cases to an ASCII `k`.
        assert!(!check(&plugin, &with_context_ua("Web\u{212A}IT")).is_accept());
        assert!(!check(&plugin, &with_context_ua("ÜNÏcode")).is_accept());
        assert!(check(&plugin, &with_context_ua("UNIcode")).is_accept());
        let sensitive =
            BotFilter::init(r#"{"user_agent_patterns": ["kit"], "case_insensitive": false}"#)
                .unwrap();
        assert!(check(&sensitive, &with_context_ua("Web\u{212A}it")).is_accept());
        assert!(!check(&sensitive, &with_context_ua("ÜNÏ kit")).is_accept());
    }

    #[test]
    fn more_than_64_patterns() {
        let mut patterns: Vec<String> = (0..70).map(|i| format!("pattern{i:02}x")).collect();
        patterns.push("Bot".to_owned());
        let config = format!(r#"{{"user_agent_patterns": {patterns:?}}}"#);
        let plugin = BotFilter::init(&config).unwrap();
        assert_eq!(
            check(&plugin, &with_context_ua("PATTERN66X and pattern65x")),
            Verdict::reject(
                "bot_traffic",
                "the user agent matches the bot pattern `pattern65x`"
            )
        );
        assert_eq!(
            check(&plugin, &with_context_ua("a bot")),
            Verdict::reject(
                "bot_traffic",
                "the user agent matches the bot pattern `Bot`"
            )
        );
        assert!(check(&plugin, &with_context_ua(FIREFOX)).is_accept());
    }

    #[test]
    fn matching_agrees_with_lower_casing_and_contains() {
        const ALPHABET: &[u8] = b"abAB/o0 ";
        let mut state: u64 = 99;
        let mut random = |n: usize| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as usize % n
        };
        let mut text = |max: usize| -> String {
            let len = random(max + 1);
            (0..len)
                .map(|_| char::from(ALPHABET[random(ALPHABET.len())]))
                .collect()
        };
        for round in 0..3000 {
            let count = 1 + (round % 4) * 30;
            let patterns: Vec<String> = (0..count)
                .map(|_| {
                    format!(
                        "{}{}",
                        char::from(ALPHABET[round % ALPHABET.len()]),
                        text(2)
                    )
                })
                .collect();
            let case_insensitive = round % 2 == 0;
            let haystack = text(40);
            let config = sluice_plugin_sdk::json!({
                "user_agent_patterns": patterns,
                "case_insensitive": case_insensitive,
            });
            let plugin = BotFilter::init(&config.to_string()).unwrap();
            let folded = if case_insensitive {
                haystack.to_lowercase()
            } else {
                haystack.clone()
            };
            let expected = plugin
                .needles
                .iter()
                .position(|n| folded.contains(n.as_str()))
                .map(|i| plugin.patterns[i].as_str());
            assert_eq!(
                plugin.matching(&haystack),
                expected,
                "{haystack:?} {config}"
            );
        }
    }

    #[test]
    fn empty_pattern_list_accepts_everything() {
        let plugin = BotFilter::init(r#"{"user_agent_patterns": []}"#).unwrap();
        assert!(check(&plugin, &with_context_ua(GOOGLEBOT)).is_accept());
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
