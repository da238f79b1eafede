//! What a run measured: per-step latency histograms (HDR, microseconds),
//! successes and failures, and the report made of them (Markdown or JSON).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::browser::Failure;

/// The measured part of a run: operations that start at or after
/// `measure_from` and end by `end` count; the warm-up before it does not.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    /// End of the warm-up.
    pub measure_from: Instant,
    /// End of the run.
    pub end: Instant,
}

/// Longest latency the histograms hold exactly (longer ones are clamped).
const MAX_MICROS: u64 = 300_000_000;

#[derive(Debug)]
struct Step {
    latency: Histogram<u64>,
    ok: u64,
    errors: BTreeMap<Failure, u64>,
}

/// One virtual browser's tally, merged into the run's at the end.
#[derive(Debug)]
pub struct Recorder {
    window: Window,
    steps: Vec<Step>,
    /// Failures during the warm-up (not in the table; reported as a count).
    pub warmup_errors: u64,
}

impl Recorder {
    /// When the warm-up ends and measuring starts.
    pub fn measure_from(&self) -> Instant {
        self.window.measure_from
    }

    /// A tally of `steps` steps over `window`.
    pub fn new(steps: usize, window: Window) -> Self {
        Self {
            window,
            steps: (0..steps)
                .map(|_| Step {
                    latency: Histogram::new_with_bounds(1, MAX_MICROS, 3)
                        .expect("valid histogram bounds"),
                    ok: 0,
                    errors: BTreeMap::new(),
                })
                .collect(),
            warmup_errors: 0,
        }
    }

    /// Records step `step`, started at `started` and ending now, and hands
    /// back its value on success.
    pub fn done<T>(
        &mut self,
        step: usize,
        started: Instant,
        result: Result<T, Failure>,
    ) -> Option<T> {
        let now = Instant::now();
        let s = &mut self.steps[step];
        match result {
            Ok(v) => {
                if started >= self.window.measure_from && now <= self.window.end {
                    let micros = u64::try_from(now.duration_since(started).as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1);
                    s.latency.saturating_record(micros);
                    s.ok += 1;
                }
                Some(v)
            }
            Err(e) => {
                if e.is_run_ended() {
                    // Not an answer from the server: nothing to count.
                } else if started < self.window.measure_from {
                    self.warmup_errors += 1;
                } else if started < self.window.end {
                    *s.errors.entry(e).or_default() += 1;
                }
                None
            }
        }
    }

    /// Successes of step `step` so far (in the window).
    pub fn ok(&self, step: usize) -> u64 {
        self.steps[step].ok
    }

    /// Adds `other`'s tally to this one.
    pub fn merge(&mut self, other: Recorder) {
        for (mine, theirs) in self.steps.iter_mut().zip(other.steps) {
            mine.latency
                .add(&theirs.latency)
                .expect("histograms of equal bounds add");
            mine.ok += theirs.ok;
            for (e, n) in theirs.errors {
                *mine.errors.entry(e).or_default() += n;
            }
        }
        self.warmup_errors += other.warmup_errors;
    }

    /// Every failure in the window, by step and answer.
    pub fn errors(&self, names: &[&str]) -> Vec<ErrorRow> {
        self.steps
            .iter()
            .zip(names)
            .flat_map(|(s, name)| {
                s.errors.iter().map(|(e, n)| ErrorRow {
                    step: (*name).to_owned(),
                    answer: e.0.clone(),
                    count: *n,
                })
            })
            .collect()
    }

    /// One table row per step, rates over `measured`.
    pub fn rows(&self, names: &[&str], measured: Duration) -> Vec<StepRow> {
        let secs = measured.as_secs_f64();
        self.steps
            .iter()
            .zip(names)
            .map(|(s, name)| {
                let ms = |q: f64| (s.ok > 0).then(|| s.latency.value_at_quantile(q) as f64 / 1e3);
                StepRow {
                    step: (*name).to_owned(),
                    ok: s.ok,
                    per_second: if secs > 0.0 { s.ok as f64 / secs } else { 0.0 },
                    p50_ms: ms(0.50),
                    p90_ms: ms(0.90),
                    p99_ms: ms(0.99),
                    max_ms: (s.ok > 0).then(|| s.latency.max() as f64 / 1e3),
                }
            })
            .collect()
    }
}

/// One step of the table.
#[derive(Debug, Serialize)]
pub struct StepRow {
    /// What was measured.
    pub step: String,
    /// Successes in the measured window.
    pub ok: u64,
    /// Successes per second.
    pub per_second: f64,
    /// Latency percentiles and maximum in milliseconds (none without a success).
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Failures of one kind.
#[derive(Debug, Serialize)]
pub struct ErrorRow {
    /// The step that failed.
    pub step: String,
    /// How: `HTTP 429 too_many_requests`, `timeout`…
    pub answer: String,
    /// How often, in the measured window.
    pub count: u64,
}

/// Emails the SMTP sink accepted while measuring.
#[derive(Debug, Serialize)]
pub struct EmailRow {
    pub accepted: u64,
    pub per_second: f64,
}

/// Everything a run reports; `--json` prints it as is.
#[derive(Debug, Serialize)]
pub struct Report {
    pub tool: String,
    /// When the measurement ended, UTC, RFC 3339.
    pub date: String,
    pub scenario: String,
    pub urls: Vec<String>,
    /// Virtual browsers (one connection each, per instance).
    pub concurrency: usize,
    /// `one` (every request from the bench's own address) or `per-person`
    /// (each person's requests with an `X-Forwarded-For` of their own).
    pub client_addresses: String,
    pub warmup_s: f64,
    /// The measured window (shorter than `--duration` when the verify
    /// scenario's prepared links ran out).
    pub duration_s: f64,
    /// The machine's 1-minute load average when the run started.
    pub load_average: Option<f64>,
    pub steps: Vec<StepRow>,
    pub errors: Vec<ErrorRow>,
    pub warmup_errors: u64,
    /// `None` for scenarios that send no email.
    pub emails: Option<EmailRow>,
    pub notes: Vec<String>,
}

fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut groups: Vec<&str> = Vec::new();
    let mut end = digits.len();
    // Groups of three digits from the right, joined by commas.
    while end > 3 {
        groups.push(&digits[end - 3..end]);
        end -= 3;
    }
    groups.push(&digits[..end]);
    groups.reverse();
    groups.join(",")
}

fn millis(ms: Option<f64>) -> String {
    match ms {
        None => "–".to_owned(),
        Some(ms) if ms < 10.0 => format!("{ms:.2} ms"),
        Some(ms) if ms < 100.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{} ms", count(ms.round() as u64)),
    }
}

impl Report {
    /// The report as Markdown: a heading line, the table, emails, errors.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let instances = match self.urls.len() {
            1 => format!("1 instance ({})", self.urls[0]),
            n => format!("{n} instances ({})", self.urls.join(", ")),
        };
        let load = self
            .load_average
            .map(|l| format!(" · load average {l:.2} at start"))
            .unwrap_or_default();
        let addresses = match self.client_addresses.as_str() {
            "per-person" => " · an address per person (X-Forwarded-For)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "**{}** `{}` · {} virtual browsers{} · {:.1} s measured after {:.1} s warm-up · {} · {}{}\n",
            self.tool, self.scenario, self.concurrency, addresses, self.duration_s, self.warmup_s,
            instances, self.date, load
        );
        out.push_str("| step | ok | per second | p50 | p90 | p99 | max |\n");
        out.push_str("| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n");
        for r in &self.steps {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.step,
                count(r.ok),
                count(r.per_second.round() as u64),
                millis(r.p50_ms),
                millis(r.p90_ms),
                millis(r.p99_ms),
                millis(r.max_ms),
            );
        }
        if let Some(e) = &self.emails {
            let _ = writeln!(
                out,
                "\nEmails accepted by the SMTP sink while measuring: {} ({}/s).",
                count(e.accepted),
                count(e.per_second.round() as u64)
            );
        }
        let warmup = match self.warmup_errors {
            0 => String::new(),
            n => format!(" ({} more during the warm-up)", count(n)),
        };
        if self.errors.is_empty() {
            let _ = writeln!(out, "\nNo errors while measuring{warmup}.");
        } else {
            let _ = writeln!(out, "\nErrors while measuring{warmup}:\n");
            out.push_str("| failed step | answer | count |\n| --- | --- | ---: |\n");
            for e in &self.errors {
                let _ = writeln!(out, "| {} | {} | {} |", e.step, e.answer, count(e.count));
            }
        }
        for n in &self.notes {
            let _ = writeln!(out, "\n{n}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_latencies_read_well() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1234567), "1,234,567");
        assert_eq!(millis(Some(2.345)), "2.35 ms");
        assert_eq!(millis(Some(22.06)), "22.1 ms");
        assert_eq!(millis(Some(1234.4)), "1,234 ms");
        assert_eq!(millis(None), "–");
    }

    #[test]
    fn only_operations_inside_the_window_count() {
        let start = Instant::now();
        let window = Window {
            measure_from: start + Duration::from_millis(50),
            end: start + Duration::from_secs(60),
        };
        let mut r = Recorder::new(1, window);
        r.done(0, start, Ok(()));
        r.done::<()>(0, start, Err(Failure("HTTP 500".into())));
        std::thread::sleep(Duration::from_millis(60));
        let t = Instant::now();
        r.done(0, t, Ok(()));
        r.done::<()>(0, t, Err(Failure("HTTP 429 too_many_requests".into())));
        assert_eq!(r.ok(0), 1);
        assert_eq!(r.warmup_errors, 1);
        let errors = r.errors(&["POST /x"]);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].answer, "HTTP 429 too_many_requests");
        let rows = r.rows(&["POST /x"], Duration::from_secs(2));
        assert_eq!(rows[0].per_second, 0.5);
        assert!(rows[0].p99_ms.is_some());
    }
}
