//! `sluice stats`: what a dashboard shows, from the aggregator's rollups:
//! event counts over time, daily active users and top events for a team.

use sluice_clickhouse::dashboard::Point;
use sluice_core::Timestamp;

/// A time from the command line: RFC 3339 (`2026-11-26T08:00:00Z`) or a UTC
/// date (`2026-11-26`, meaning its midnight).
pub fn parse_time(text: &str) -> anyhow::Result<Timestamp> {
    if text.len() == 10 && text.as_bytes().get(4) == Some(&b'-') {
        return Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z"))
            .map_err(|e| anyhow::anyhow!("`{text}`: {e}"));
    }
    Timestamp::parse_rfc3339(text).map_err(|e| anyhow::anyhow!("`{text}`: {e}"))
}

/// The range `[from, to)`: `to` defaults to now, `from` to `default_span_ms`
/// before `to`.
pub fn range(
    from: Option<&str>,
    to: Option<&str>,
    default_span_ms: i64,
) -> anyhow::Result<(Timestamp, Timestamp)> {
    let to = match to {
        Some(text) => parse_time(text)?,
        None => Timestamp::now(),
    };
    let from = match from {
        Some(text) => parse_time(text)?,
        None => Timestamp::from_millis(to.as_millis() - default_span_ms),
    };
    anyhow::ensure!(
        from.as_millis() < to.as_millis(),
        "--from must be before --to"
    );
    Ok((from, to))
}

/// Points as aligned text with a bar scaled to the largest value, or as JSON.
pub fn render(points: &[Point], json: bool) -> String {
    if json {
        return serde_json::to_string_pretty(points).unwrap_or_else(|_| "[]".to_owned());
    }
    if points.is_empty() {
        return "(no data in this range)".to_owned();
    }
    let width = points
        .iter()
        .map(|p| p.label.chars().count())
        .max()
        .unwrap_or(0);
    let max = points.iter().map(|p| p.value).max().unwrap_or(1).max(1);
    points
        .iter()
        .map(|p| {
            let bar = "#".repeat(((p.value * 40).div_ceil(max)) as usize);
            format!("{:<width$}  {:>10}  {bar}", p.label, p.value)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_instants_parse() {
        assert_eq!(
            parse_time("2026-11-26").unwrap(),
            Timestamp::parse_rfc3339("2026-11-26T00:00:00Z").unwrap()
        );
        assert!(parse_time("yesterday").is_err());
        assert!(range(Some("2026-11-27"), Some("2026-11-26"), 0).is_err());
    }

    #[test]
    fn renders_bars_and_json() {
        let points = vec![
            Point {
                label: "Clicked".into(),
                value: 40,
            },
            Point {
                label: "Signed Up".into(),
                value: 10,
            },
        ];
        let text = render(&points, false);
        assert!(
            text.starts_with("Clicked            40  ########################################")
        );
        assert!(text.ends_with("Signed Up          10  ##########"));
        assert!(render(&points, true).contains("\"value\": 40"));
        assert_eq!(render(&[], false), "(no data in this range)");
    }
}
