//! Histograms from the gateway's `GET /metrics` (Prometheus text format).
//!
//! Bucket counters are cumulative since the gateway started, so a scenario's
//! own distribution is the difference of two scrapes taken around it; the
//! quantile is then interpolated inside its bucket the way Prometheus'
//! `histogram_quantile` does. The answer is only as fine as the buckets, so
//! [`Histogram::share_at_most`] also reports the exact fraction of requests at
//! or under a bucket bound (e.g. "99.6 % ≤ 2 ms") when a goal sits on one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One histogram (all label sets summed), buckets keyed by upper bound.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// (upper bound in the metric's unit, cumulative count), ascending; the
    /// last bound may be `f64::INFINITY`.
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

/// Parses histogram `name` out of a Prometheus text exposition; `None` when
/// the metric is absent.
pub fn histogram(text: &str, name: &str) -> Option<Histogram> {
    let bucket_prefix = format!("{name}_bucket");
    let count_name = format!("{name}_count");
    let sum_name = format!("{name}_sum");
    let mut by_bound: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    let (mut count, mut sum, mut found) = (0.0, 0.0, false);
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let metric = series.split('{').next().unwrap_or(series);
        if metric == bucket_prefix {
            let Some(le) = label(series, "le") else {
                continue;
            };
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                match le.parse::<f64>() {
                    Ok(bound) => bound,
                    Err(_) => continue,
                }
            };
            // f64 is not Ord; its bit pattern orders non-negative values correctly.
            let entry = by_bound.entry(bound.to_bits()).or_insert((bound, 0.0));
            entry.1 += value;
            found = true;
        } else if metric == count_name {
            count += value;
            found = true;
        } else if metric == sum_name {
            sum += value;
        }
    }
    found.then(|| Histogram {
        buckets: by_bound.into_values().collect(),
        count,
        sum,
    })
}

fn label<'a>(series: &'a str, name: &str) -> Option<&'a str> {
    let labels = series.split_once('{')?.1.strip_suffix('}')?;
    labels.split(',').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key.trim() == name).then(|| value.trim().trim_matches('"'))
    })
}

impl Histogram {
    /// `self - earlier`: the observations made between two scrapes. If the
    /// counters went down (the gateway restarted) `self` is returned as is.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        if self.count < earlier.count {
            return self.clone();
        }
        let buckets = self
            .buckets
            .iter()
            .map(|&(bound, value)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(b, _)| b.to_bits() == bound.to_bits())
                    .map_or(0.0, |&(_, v)| v);
                (bound, value - before)
            })
            .collect();
        Histogram {
            buckets,
            count: self.count - earlier.count,
            sum: self.sum - earlier.sum,
        }
    }

    /// The `q` quantile (0..=1), linearly interpolated within its bucket; the
    /// largest finite bound when it falls in `+Inf`. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last().map(|&(_, v)| v).unwrap_or(0.0);
        if total <= 0.0 {
            return None;
        }
        let rank = q.clamp(0.0, 1.0) * total;
        let mut lower_bound = 0.0;
        let mut lower_count = 0.0;
        for &(bound, cumulative) in &self.buckets {
            if cumulative >= rank {
                if bound.is_infinite() {
                    return Some(lower_bound);
                }
                let in_bucket = cumulative - lower_count;
                if in_bucket <= 0.0 {
                    return Some(bound);
                }
                return Some(
                    lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket,
                );
            }
            lower_bound = bound;
            lower_count = cumulative;
        }
        Some(lower_bound)
    }

    /// Fraction of observations ≤ `bound`, when `bound` is one of the bucket
    /// bounds (exact, no interpolation).
    pub fn share_at_most(&self, bound: f64) -> Option<f64> {
        let total = self.buckets.last().map(|&(_, v)| v).unwrap_or(0.0);
        if total <= 0.0 {
            return None;
        }
        self.buckets
            .iter()
            .find(|(b, _)| (*b - bound).abs() <= bound * 1e-9)
            .map(|&(_, v)| v / total)
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# TYPE sluice_gateway_processing_duration_seconds histogram
sluice_gateway_processing_duration_seconds_bucket{le=\"0.001\"} 50
sluice_gateway_processing_duration_seconds_bucket{le=\"0.002\"} 90
sluice_gateway_processing_duration_seconds_bucket{le=\"0.005\"} 100
sluice_gateway_processing_duration_seconds_bucket{le=\"+Inf\"} 100
sluice_gateway_processing_duration_seconds_sum 0.12
sluice_gateway_processing_duration_seconds_count 100
sluice_gateway_request_duration_seconds_bucket{le=\"0.001\"} 7
";

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let h = histogram(TEXT, "sluice_gateway_processing_duration_seconds").unwrap();
        assert_eq!(h.count, 100.0);
        let p50 = h.quantile(0.5).unwrap();
        assert!((p50 - 0.001).abs() < 1e-12, "{p50}");
        let p95 = h.quantile(0.95).unwrap();
        assert!((p95 - 0.0035).abs() < 1e-9, "{p95}");
        assert_eq!(h.share_at_most(0.002), Some(0.9));
        assert!(histogram(TEXT, "absent_metric").is_none());
    }

    #[test]
    fn deltas_between_scrapes_isolate_a_scenario() {
        let before = histogram(TEXT, "sluice_gateway_processing_duration_seconds").unwrap();
        // 100 more observations, all between 2 and 5 ms.
        let after_text = TEXT
            .replace("{le=\"0.005\"} 100", "{le=\"0.005\"} 200")
            .replace("{le=\"+Inf\"} 100", "{le=\"+Inf\"} 200")
            .replace("_count 100", "_count 200");
        let after = histogram(&after_text, "sluice_gateway_processing_duration_seconds").unwrap();
        let delta = after.since(&before);
        assert_eq!(delta.count, 100.0);
        assert_eq!(delta.share_at_most(0.002), Some(0.0));
        let p99 = delta.quantile(0.99).unwrap();
        assert!(p99 > 0.002 && p99 <= 0.005);
    }

    #[test]
    fn label_sets_are_summed() {
        let text = "m_bucket{route=\"a\",le=\"1\"} 1\nm_bucket{route=\"b\",le=\"1\"} 2\nm_bucket{route=\"a\",le=\"+Inf\"} 1\nm_bucket{route=\"b\",le=\"+Inf\"} 3\nm_count{route=\"a\"} 1\nm_count{route=\"b\"} 3\n";
        let h = histogram(text, "m").unwrap();
        assert_eq!(h.buckets, vec![(1.0, 3.0), (f64::INFINITY, 4.0)]);
        assert_eq!(h.count, 4.0);
    }
}
