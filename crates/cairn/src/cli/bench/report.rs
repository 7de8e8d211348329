//! What a benchmark measured, and the two ways it is printed: a table for people, one JSON
//! object (`--json`) for scripts. Pure: no I/O beyond building strings.
//!
//! Latencies are kept in HdrHistograms of microseconds and printed in milliseconds with
//! three decimals. JSON fields (all numbers; latencies `null` when nothing was measured):
//!
//! ```text
//! {"mode": "produce", "topic": "t", "interrupted": false,
//!  "records": 5000, "bytes": 5120000, "requests": 334, "elapsed_s": 0.52,
//!  "records_per_s": 9615.4, "mib_per_s": 9.39,
//!  "config": {"record_size": 1024, "acks": "all", ...},
//!  "latency_ms": {"request": {"count": 334, "min": 0.2, "p50": 0.8, "p95": 1.5, "p99": 2.1,
//!                             "p999": 2.9, "max": 3.0, "mean": 0.9}}}
//! ```

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::anyhow;
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};

/// Bytes in a mebibyte.
pub(super) const MIB: f64 = 1024.0 * 1024.0;
/// Largest latency a histogram holds exactly, in microseconds (one hour); longer ones are
/// recorded as this.
const MAX_LATENCY_MICROS: u64 = 3_600_000_000;
/// Significant decimal digits the histograms keep (0.1% error).
const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty latency histogram (microseconds).
pub(super) fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_LATENCY_MICROS, SIGNIFICANT_DIGITS)
        .map_err(|e| anyhow!("internal error: cannot make a latency histogram: {e:?}"))
}

/// Records `latency` in `histogram` (clamped to the histogram's range).
pub(super) fn record(histogram: &mut Histogram<u64>, latency: Duration) {
    let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.max(1));
}

/// `histograms` merged into one.
pub(super) fn merge<'a>(
    histograms: impl IntoIterator<Item = &'a Histogram<u64>>,
) -> anyhow::Result<Histogram<u64>> {
    let mut all = histogram()?;
    for h in histograms {
        all.add(h)
            .map_err(|e| anyhow!("internal error: cannot merge latency histograms: {e:?}"))?;
    }
    Ok(all)
}

/// Percentiles of one kind of latency, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Latency {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p95: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    /// The percentiles of `h`, `None` when it is empty. Each percentile is at most the
    /// next one and at most the maximum (HdrHistogram reports a bucket's upper edge, which
    /// could otherwise pass the largest value recorded).
    pub fn of(h: &Histogram<u64>) -> Option<Latency> {
        if h.is_empty() {
            return None;
        }
        let max = h.max();
        let min = h.min().min(max);
        let at = |q: f64| h.value_at_quantile(q).clamp(min, max);
        let p999 = at(0.999);
        let p99 = at(0.99).min(p999);
        let p95 = at(0.95).min(p99);
        let p50 = at(0.5).min(p95);
        Some(Latency {
            count: h.len(),
            min,
            p50,
            p95,
            p99,
            p999,
            max,
            mean: h.mean(),
        })
    }

    fn to_json(self) -> Value {
        json!({
            "count": self.count,
            "min": ms(self.min as f64),
            "p50": ms(self.p50 as f64),
            "p95": ms(self.p95 as f64),
            "p99": ms(self.p99 as f64),
            "p999": ms(self.p999 as f64),
            "max": ms(self.max as f64),
            "mean": ms(self.mean),
        })
    }
}

/// Microseconds as milliseconds, rounded to the microsecond.
fn ms(micros: f64) -> f64 {
    micros.round() / 1000.0
}

/// What one run measured.
#[derive(Debug, Clone)]
pub(super) struct Report {
    /// `produce`, `consume` or `e2e`.
    pub mode: &'static str,
    pub topic: String,
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
    /// From the first request to the last answer.
    pub elapsed: Duration,
    /// Records acknowledged (produce) or read (consume, e2e).
    pub records: u64,
    /// Key and value bytes of those records.
    pub bytes: u64,
    /// Produce or Fetch requests answered.
    pub requests: u64,
    /// The settings of the run, shown in the header line and under `config`.
    pub config: Vec<(&'static str, Value)>,
    /// Each kind of latency measured, by name (`request`, `fetch`, `end_to_end`, ...).
    pub latencies: Vec<(&'static str, Option<Latency>)>,
    /// Extra counts (e2e: `produced`, `missing`), shown after the throughput.
    pub counts: Vec<(&'static str, u64)>,
}

impl Report {
    /// Records per second over the run.
    pub fn records_per_s(&self) -> f64 {
        per_second(self.records as f64, self.elapsed)
    }

    /// MiB of keys and values per second over the run.
    pub fn mib_per_s(&self) -> f64 {
        per_second(self.bytes as f64 / MIB, self.elapsed)
    }

    /// The `--json` object.
    pub fn to_json(&self) -> Value {
        let mut out = Map::new();
        out.insert("mode".into(), json!(self.mode));
        out.insert("topic".into(), json!(self.topic));
        out.insert("interrupted".into(), json!(self.interrupted));
        out.insert("records".into(), json!(self.records));
        out.insert("bytes".into(), json!(self.bytes));
        out.insert("requests".into(), json!(self.requests));
        out.insert(
            "elapsed_s".into(),
            json!(round3(self.elapsed.as_secs_f64())),
        );
        out.insert("records_per_s".into(), json!(round3(self.records_per_s())));
        out.insert("mib_per_s".into(), json!(round3(self.mib_per_s())));
        for (name, count) in &self.counts {
            out.insert((*name).into(), json!(count));
        }
        let config: Map<String, Value> = self
            .config
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        out.insert("config".into(), Value::Object(config));
        let latencies: Map<String, Value> = self
            .latencies
            .iter()
            .map(|(name, l)| ((*name).to_string(), l.map_or(Value::Null, Latency::to_json)))
            .collect();
        out.insert("latency_ms".into(), Value::Object(latencies));
        Value::Object(out)
    }

    /// The closing table.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let settings: Vec<String> = self
            .config
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                v => format!("{k}={v}"),
            })
            .collect();
        let _ = writeln!(
            out,
            "bench {} on topic {}{}",
            self.mode,
            self.topic,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            }
        );
        if !settings.is_empty() {
            let _ = writeln!(out, "  {}", settings.join(" "));
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{:<14}{}", "records", self.records);
        let _ = writeln!(out, "{:<14}{:.2} MiB", "data", self.bytes as f64 / MIB);
        let _ = writeln!(out, "{:<14}{}", "requests", self.requests);
        let _ = writeln!(out, "{:<14}{:.3} s", "elapsed", self.elapsed.as_secs_f64());
        let _ = writeln!(
            out,
            "{:<14}{:.1} records/s  {:.2} MiB/s",
            "throughput",
            self.records_per_s(),
            self.mib_per_s()
        );
        for (name, count) in &self.counts {
            let _ = writeln!(out, "{name:<14}{count}");
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{:<14}{:>9}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}{:>10}",
            "latency (ms)", "count", "min", "p50", "p95", "p99", "p99.9", "max", "mean"
        );
        for (name, latency) in &self.latencies {
            match latency {
                Some(l) => {
                    let _ = writeln!(
                        out,
                        "{:<14}{:>9}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}{:>10.3}",
                        name.replace('_', "-"),
                        l.count,
                        l.min as f64 / 1000.0,
                        l.p50 as f64 / 1000.0,
                        l.p95 as f64 / 1000.0,
                        l.p99 as f64 / 1000.0,
                        l.p999 as f64 / 1000.0,
                        l.max as f64 / 1000.0,
                        l.mean / 1000.0,
                    );
                }
                None => {
                    let _ = writeln!(out, "{:<14}{:>9}  (nothing measured)", name, 0);
                }
            }
        }
        out
    }
}

fn per_second(amount: f64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
