//! `/metrics`: the Prometheus text exposition format, rendered from counts read out of SQLite
//! at scrape time ([`Store::metric_counts`]). The database is the record, so the numbers
//! survive restarts and every process (daemon, `crawl --once`) is counted.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::store::{CRAWL_DURATION_BUCKETS, MetricCounts, Store, StoreError};

/// The Content-Type of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads the counts and renders them.
pub async fn scrape(store: &Store, started: DateTime<Utc>) -> Result<String, StoreError> {
    Ok(render(&store.metric_counts().await?, started))
}

/// Renders the counts as Prometheus text.
pub fn render(c: &MetricCounts, started: DateTime<Utc>) -> String {
    let mut out = Exposition::default();
    out.family(
        "markwatch_build_info",
        "gauge",
        "The running markwatch version.",
    );
    out.sample(
        "markwatch_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    out.family(
        "markwatch_start_time_seconds",
        "gauge",
        "When this process started, Unix time.",
    );
    out.sample("markwatch_start_time_seconds", &[], started.timestamp());

    out.family(
        "markwatch_pages_fetched_total",
        "counter",
        "Pages fetched, by platform and outcome (ok, failed, blocked by a captcha or login wall).",
    );
    for t in &c.crawl {
        for (outcome, n) in [
            ("ok", t.pages_ok),
            ("failed", t.pages_failed),
            ("blocked", t.pages_blocked),
        ] {
            out.sample(
                "markwatch_pages_fetched_total",
                &[("platform", &t.platform), ("outcome", outcome)],
                n,
            );
        }
    }
    out.family(
        "markwatch_page_retries_total",
        "counter",
        "Pages that needed more than one attempt (throttling, 5xx, broken or truncated transfers).",
    );
    for t in &c.crawl {
        out.sample(
            "markwatch_page_retries_total",
            &[("platform", &t.platform)],
            t.pages_retried,
        );
    }
    out.family(
        "markwatch_listings_new_total",
        "counter",
        "Listings seen for the first time.",
    );
    for t in &c.crawl {
        out.sample(
            "markwatch_listings_new_total",
            &[("platform", &t.platform)],
            t.listings_new,
        );
    }
    out.family(
        "markwatch_listings_changed_total",
        "counter",
        "Listings whose title, price or seller changed.",
    );
    for t in &c.crawl {
        out.sample(
            "markwatch_listings_changed_total",
            &[("platform", &t.platform)],
            t.listings_changed,
        );
    }
    out.family(
        "markwatch_listings",
        "gauge",
        "Listings stored, by platform.",
    );
    for (platform, n) in &c.listings {
        out.sample("markwatch_listings", &[("platform", platform)], *n);
    }
    out.family(
        "markwatch_evidence_pages",
        "gauge",
        "Pages kept as hash-chained evidence.",
    );
    out.sample("markwatch_evidence_pages", &[], c.evidence_pages);
    out.family(
        "markwatch_crawl_runs_total",
        "counter",
        "Crawl runs by platform and how they ended (ok, partial, failed, abandoned, running).",
    );
    for (platform, status, n) in &c.crawl_runs {
        out.sample(
            "markwatch_crawl_runs_total",
            &[("platform", platform), ("status", status)],
            *n,
        );
    }
    out.family(
        "markwatch_crawl_duration_seconds",
        "histogram",
        "How long a platform's crawl run took, start to finish.",
    );
    for h in &c.crawl_durations {
        let name = "markwatch_crawl_duration_seconds_bucket";
        for (le, n) in CRAWL_DURATION_BUCKETS.iter().zip(&h.buckets) {
            out.sample(
                name,
                &[("platform", &h.platform), ("le", &le.to_string())],
                *n,
            );
        }
        out.sample(name, &[("platform", &h.platform), ("le", "+Inf")], h.count);
        out.sample_f(
            "markwatch_crawl_duration_seconds_sum",
            &[("platform", &h.platform)],
            h.sum_secs,
        );
        out.sample(
            "markwatch_crawl_duration_seconds_count",
            &[("platform", &h.platform)],
            h.count,
        );
    }

    out.family(
        "markwatch_matches",
        "gauge",
        "Listings by current verdict (infringing, suspect, clear).",
    );
    for (platform, verdict, n) in &c.matches {
        out.sample(
            "markwatch_matches",
            &[("platform", platform), ("verdict", verdict)],
            *n,
        );
    }
    out.family(
        "markwatch_notices",
        "gauge",
        "Takedown notices by platform and state (draft, approved, filed, ...).",
    );
    for (platform, state, n) in &c.notices {
        out.sample(
            "markwatch_notices",
            &[("platform", platform), ("state", state)],
            *n,
        );
    }
    out.family(
        "markwatch_alerts",
        "gauge",
        "Alert emails by kind and state (queued, sending, sent, failed_retrying, dead).",
    );
    for (kind, state, n) in &c.alerts {
        out.sample("markwatch_alerts", &[("kind", kind), ("state", state)], *n);
    }
    out.family(
        "markwatch_alert_oldest_queued_age_seconds",
        "gauge",
        "Age of the oldest alert still waiting to be sent; 0 when none waits.",
    );
    out.sample_f(
        "markwatch_alert_oldest_queued_age_seconds",
        &[],
        c.oldest_queued_alert_secs.unwrap_or(0.0),
    );

    out.family(
        "markwatch_schedule_runs_total",
        "counter",
        "Runs by watch, trigger (schedule, catch_up, resume, manual) and status.",
    );
    for (watch, trigger, status, n) in &c.schedule_runs {
        out.sample(
            "markwatch_schedule_runs_total",
            &[("watch", watch), ("trigger", trigger), ("status", status)],
            *n,
        );
    }
    out.family(
        "markwatch_schedule_next_run_timestamp_seconds",
        "gauge",
        "When each watch runs next, Unix time.",
    );
    for s in &c.schedules {
        out.sample(
            "markwatch_schedule_next_run_timestamp_seconds",
            &[("watch", &s.watch)],
            s.next_run_at.timestamp(),
        );
    }
    out.family(
        "markwatch_schedule_last_finished_timestamp_seconds",
        "gauge",
        "When each watch's last scheduled run finished, Unix time.",
    );
    for s in &c.schedules {
        let finished = s
            .last_finished_at
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
        if let Some(t) = finished {
            out.sample(
                "markwatch_schedule_last_finished_timestamp_seconds",
                &[("watch", &s.watch)],
                t.timestamp(),
            );
        }
    }
    out.text
}

#[derive(Default)]
struct Exposition {
    text: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    fn labels(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape(v));
            }
            self.text.push('}');
        }
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: i64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, " {value}");
    }

    fn sample_f(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.labels(name, labels);
        let _ = writeln!(self.text, " {value}");
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CrawlTotals, DurationHistogram};

    #[test]
    fn renders_families_samples_and_histograms() {
        let counts = MetricCounts {
            crawl: vec![CrawlTotals {
                platform: "jd".into(),
                pages_ok: 12,
                pages_retried: 2,
                pages_failed: 1,
                pages_blocked: 3,
                listings_new: 40,
                listings_changed: 1,
            }],
            crawl_durations: vec![DurationHistogram {
                platform: "jd".into(),
                buckets: vec![0, 1, 2, 2, 2, 2, 2, 2, 2, 2],
                count: 2,
                sum_secs: 11.5,
            }],
            matches: vec![("jd".into(), "infringing".into(), 7)],
            alerts: vec![("immediate".into(), "queued".into(), 2)],
            oldest_queued_alert_secs: Some(42.5),
            ..MetricCounts::default()
        };
        let text = render(&counts, Utc::now());
        for line in [
            "# TYPE markwatch_pages_fetched_total counter",
            "markwatch_pages_fetched_total{platform=\"jd\",outcome=\"blocked\"} 3",
            "markwatch_page_retries_total{platform=\"jd\"} 2",
            "markwatch_listings_new_total{platform=\"jd\"} 40",
            "# TYPE markwatch_crawl_duration_seconds histogram",
            "markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"5\"} 1",
            "markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"+Inf\"} 2",
            "markwatch_crawl_duration_seconds_sum{platform=\"jd\"} 11.5",
            "markwatch_matches{platform=\"jd\",verdict=\"infringing\"} 7",
            "markwatch_alerts{kind=\"immediate\",state=\"queued\"} 2",
            "markwatch_alert_oldest_queued_age_seconds 42.5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        // Every sample line is `name{labels} value` with a numeric value.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
