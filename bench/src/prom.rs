//! Just enough of the Prometheus text format to diff histograms between two
//! scrapes of a service's `/metrics` (per-stage figures).

use std::collections::HashMap;

use serde::Serialize;

#[derive(Debug, Default, Clone)]
pub struct Hist {
    /// (upper bound, cumulative count), in the exporter's order.
    pub buckets: Vec<(f64, f64)>,
    pub sum: f64,
    pub count: f64,
}

/// Histograms by series key: `name{labels without le}`.
pub type Scrape = HashMap<String, Hist>;

fn split_series(series: &str) -> (&str, &str) {
    match series.find('{') {
        Some(i) => (&series[..i], series[i + 1..].trim_end_matches('}')),
        None => (series, ""),
    }
}

/// The value of an unlabelled gauge `name` in a scrape's text.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
}

pub fn parse(text: &str) -> Scrape {
    let mut out: Scrape = HashMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = split_series(series);
        if let Some(base) = name.strip_suffix("_bucket") {
            let mut le = None;
            let others: Vec<&str> = labels
                .split(',')
                .filter(|l| {
                    if let Some(v) = l.strip_prefix("le=") {
                        le = Some(v.trim_matches('"'));
                        false
                    } else {
                        !l.is_empty()
                    }
                })
                .collect();
            let Some(le) = le else { continue };
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap_or(f64::INFINITY)
            };
            let key = format!("{base}{{{}}}", others.join(","));
            out.entry(key).or_default().buckets.push((bound, value));
        } else if let Some(base) = name.strip_suffix("_sum") {
            out.entry(format!("{base}{{{labels}}}")).or_default().sum = value;
        } else if let Some(base) = name.strip_suffix("_count") {
            out.entry(format!("{base}{{{labels}}}")).or_default().count = value;
        }
    }
    out
}

/// The change of histogram `name` (series whose labels contain every string
/// of `with`, merged) between two scrapes.
pub fn delta(before: &Scrape, after: &Scrape, name: &str, with: &[&str]) -> Option<Hist> {
    let select = |s: &Scrape| -> Hist {
        let mut merged = Hist::default();
        for (key, h) in s {
            let Some(labels) = key.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
                continue;
            };
            if !with.iter().all(|w| labels.contains(w)) {
                continue;
            }
            merged.sum += h.sum;
            merged.count += h.count;
            if merged.buckets.is_empty() {
                merged.buckets = h.buckets.clone();
            } else {
                for (m, b) in merged.buckets.iter_mut().zip(&h.buckets) {
                    m.1 += b.1;
                }
            }
        }
        merged
    };
    let a = select(after);
    if a.buckets.is_empty() {
        return None;
    }
    let b = select(before);
    let mut d = a.clone();
    d.sum -= b.sum;
    d.count -= b.count;
    for (x, y) in d.buckets.iter_mut().zip(&b.buckets) {
        x.1 -= y.1;
    }
    Some(d)
}

#[derive(Debug, Clone, Serialize)]
pub struct StageStats {
    pub count: u64,
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
}

impl Hist {
    /// Interpolated quantile, as PromQL's `histogram_quantile`.
    pub fn quantile(&self, q: f64) -> f64 {
        if self.count <= 0.0 {
            return 0.0;
        }
        let rank = q * self.count;
        let mut lower = 0.0;
        let mut below = 0.0;
        for &(bound, cum) in &self.buckets {
            if cum >= rank {
                if bound.is_infinite() {
                    return lower;
                }
                let inside = cum - below;
                let frac = if inside > 0.0 {
                    (rank - below) / inside
                } else {
                    1.0
                };
                return lower + (bound - lower) * frac;
            }
            lower = bound;
            below = cum;
        }
        lower
    }

    /// Summary, multiplied by `scale` (1000 for seconds → ms).
    pub fn stats(&self, scale: f64) -> StageStats {
        StageStats {
            count: self.count.max(0.0) as u64,
            mean: if self.count > 0.0 {
                self.sum / self.count * scale
            } else {
                0.0
            },
            p50: self.quantile(0.5) * scale,
            p99: self.quantile(0.99) * scale,
        }
    }
}
