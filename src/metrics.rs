//! `/metrics`: counts read out of SQLite at scrape time ([`Store::metric_counts`]) and rendered
//! by the Prometheus client (`prometheus-client`) through a [`Collector`] over that snapshot.
//! The database is the record, so the numbers survive restarts and every process (daemon,
//! `crawl --once`) is counted.
//!
//! Two formats from the same collector: the Prometheus text format (0.0.4), which is what a
//! plain `curl` gets and what earlier releases served, and OpenMetrics text for a scraper that
//! asks for it in `Accept` (Prometheus does). The series are the same in both: counters' samples
//! end in `_total` either way; OpenMetrics names a counter's family without it (`# TYPE
//! markwatch_pages_fetched counter`), adds `# UNIT` lines and ends with `# EOF`.

use chrono::{DateTime, Utc};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet, prometheus_text,
    text,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use crate::store::{CRAWL_DURATION_BUCKETS, DurationHistogram, MetricCounts, Store, StoreError};

/// The Content-Type of the Prometheus text format.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The Content-Type of OpenMetrics text.
pub(crate) const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Which text format a scrape is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The Prometheus text format, version 0.0.4.
    Prometheus,
    /// OpenMetrics text 1.0.
    OpenMetrics,
}

impl Format {
    /// The format a request's `Accept` header prefers: OpenMetrics when it ranks
    /// `application/openmetrics-text` at least as high as anything else it takes, otherwise
    /// (no header, `*/*`, `text/plain`) the Prometheus text format.
    pub(crate) fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let (mut openmetrics, mut other) = (0.0_f64, 0.0_f64);
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f64>().ok())
                .unwrap_or(0.0);
            if media == "application/openmetrics-text" {
                openmetrics = openmetrics.max(q);
            } else if !media.is_empty() {
                other = other.max(q);
            }
        }
        if openmetrics > 0.0 && openmetrics >= other {
            Format::OpenMetrics
        } else {
            Format::Prometheus
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => CONTENT_TYPE,
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
        }
    }
}

/// Reads the counts and renders them.
pub(crate) async fn scrape(
    store: &Store,
    started: DateTime<Utc>,
    format: Format,
) -> Result<String, StoreError> {
    Ok(render(store.metric_counts().await?, started, format))
}

/// Renders the counts in `format`.
pub(crate) fn render(counts: MetricCounts, started: DateTime<Utc>, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot { counts, started }));
    let mut out = String::new();
    // Writing into a String fails only if an encoder does; none of ours does.
    let encoded = match format {
        Format::Prometheus => prometheus_text::encode(&mut out, &registry),
        Format::OpenMetrics => text::encode(&mut out, &registry),
    };
    debug_assert!(encoded.is_ok(), "{encoded:?}");
    out
}

/// One scrape's counts, as the client's collector.
#[derive(Debug)]
struct Snapshot {
    counts: MetricCounts,
    started: DateTime<Utc>,
}

/// A counter's value: the database sums are never negative, but a corrupt row must not wrap.
fn count(n: i64) -> ConstCounter<u64> {
    ConstCounter::new(u64::try_from(n).unwrap_or(0))
}

/// Starts a family. Counters are named without `_total`: the encoders add it to the samples
/// (and, in the Prometheus format, to HELP and TYPE). A unit is the name's last word.
fn family<'e>(
    encoder: &'e mut DescriptorEncoder,
    name: &'e str,
    unit: Option<&'e Unit>,
    kind: MetricType,
    help: &str,
) -> Result<MetricEncoder<'e>, std::fmt::Error> {
    encoder.encode_descriptor(name, help, unit, kind)
}

/// One sample of a family, under `labels`.
fn sample(
    family: &mut MetricEncoder,
    labels: &impl EncodeLabelSet,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(family.encode_family(labels)?)
}

/// One platform's histogram: the store keeps cumulative counts per bound, the client takes
/// each bucket's own count and adds them up again.
fn histogram(
    family: &mut MetricEncoder,
    labels: &impl EncodeLabelSet,
    h: &DurationHistogram,
) -> Result<(), std::fmt::Error> {
    let mut buckets = Vec::with_capacity(CRAWL_DURATION_BUCKETS.len() + 1);
    let mut below = 0_u64;
    for (le, cumulative) in CRAWL_DURATION_BUCKETS.iter().zip(&h.buckets) {
        let cumulative = u64::try_from(*cumulative).unwrap_or(0).max(below);
        buckets.push((*le, cumulative - below));
        below = cumulative;
    }
    let total = u64::try_from(h.count).unwrap_or(0).max(below);
    buckets.push((f64::INFINITY, total - below));
    family.encode_family(labels)?.encode_histogram(
        h.sum_secs,
        total,
        &buckets,
        None::<&std::collections::HashMap<usize, Exemplar<NoLabelSet, f64>>>,
    )
}

impl Collector for Snapshot {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge, Histogram};
        let c = &self.counts;
        let unit_seconds = Unit::Seconds;
        let seconds = Some(&unit_seconds);

        let info = Info::new([("version", env!("CARGO_PKG_VERSION"))]);
        info.encode(family(
            &mut e,
            "markwatch_build",
            None,
            info.metric_type(),
            "The running markwatch version.",
        )?)?;
        ConstGauge::new(self.started.timestamp()).encode(family(
            &mut e,
            "markwatch_start_time",
            seconds,
            Gauge,
            "When this process started, Unix time.",
        )?)?;

        let mut f = family(
            &mut e,
            "markwatch_pages_fetched",
            None,
            Counter,
            "Pages fetched, by platform and outcome (ok, failed, blocked by a captcha or login wall).",
        )?;
        for t in &c.crawl {
            for (outcome, n) in [
                ("ok", t.pages_ok),
                ("failed", t.pages_failed),
                ("blocked", t.pages_blocked),
            ] {
                let labels = [("platform", t.platform.as_str()), ("outcome", outcome)];
                sample(&mut f, &labels, &count(n))?;
            }
        }
        let mut f = family(
            &mut e,
            "markwatch_page_retries",
            None,
            Counter,
            "Pages that needed more than one attempt (throttling, 5xx, broken or truncated transfers).",
        )?;
        for t in &c.crawl {
            sample(
                &mut f,
                &[("platform", &t.platform)],
                &count(t.pages_retried),
            )?;
        }
        let mut f = family(
            &mut e,
            "markwatch_listings_new",
            None,
            Counter,
            "Listings seen for the first time.",
        )?;
        for t in &c.crawl {
            sample(&mut f, &[("platform", &t.platform)], &count(t.listings_new))?;
        }
        let mut f = family(
            &mut e,
            "markwatch_listings_changed",
            None,
            Counter,
            "Listings whose title, price or seller changed.",
        )?;
        for t in &c.crawl {
            sample(
                &mut f,
                &[("platform", &t.platform)],
                &count(t.listings_changed),
            )?;
        }
        let mut f = family(
            &mut e,
            "markwatch_listings",
            None,
            Gauge,
            "Listings stored, by platform.",
        )?;
        for (platform, n) in &c.listings {
            sample(&mut f, &[("platform", platform)], &ConstGauge::new(*n))?;
        }
        ConstGauge::new(c.workers_alive).encode(family(
            &mut e,
            "markwatch_workers_alive",
            None,
            Gauge,
            "Crawl workers (serve's own and `markwatch worker`s) heartbeating.",
        )?)?;
        let mut f = family(
            &mut e,
            "markwatch_jobs",
            None,
            Gauge,
            "Crawl jobs waiting (queued) and being crawled (running), by platform.",
        )?;
        for j in &c.jobs {
            for (state, n) in [("queued", j.queued), ("running", j.running)] {
                let labels = [("platform", &j.platform), ("state", &state.to_owned())];
                sample(&mut f, &labels, &ConstGauge::new(n))?;
            }
        }
        let mut f = family(
            &mut e,
            "markwatch_job_lag",
            seconds,
            Gauge,
            "How long the oldest queued crawl job of a platform has waited for a worker.",
        )?;
        for j in &c.jobs {
            sample(
                &mut f,
                &[("platform", &j.platform)],
                &ConstGauge::new(j.lag_secs),
            )?;
        }
        ConstGauge::new(c.evidence_pages).encode(family(
            &mut e,
            "markwatch_evidence_pages",
            None,
            Gauge,
            "Pages kept as hash-chained evidence.",
        )?)?;
        let mut f = family(
            &mut e,
            "markwatch_crawl_runs",
            None,
            Counter,
            "Crawl runs by platform and how they ended (ok, partial, failed, abandoned, running).",
        )?;
        for (platform, status, n) in &c.crawl_runs {
            let labels = [("platform", platform), ("status", status)];
            sample(&mut f, &labels, &count(*n))?;
        }
        let mut f = family(
            &mut e,
            "markwatch_crawl_duration",
            seconds,
            Histogram,
            "How long a platform's crawl run took, start to finish.",
        )?;
        for h in &c.crawl_durations {
            histogram(&mut f, &[("platform", &h.platform)], h)?;
        }

        let mut f = family(
            &mut e,
            "markwatch_matches",
            None,
            Gauge,
            "Listings by current verdict (infringing, suspect, clear).",
        )?;
        for (platform, verdict, n) in &c.matches {
            let labels = [("platform", platform), ("verdict", verdict)];
            sample(&mut f, &labels, &ConstGauge::new(*n))?;
        }
        let mut f = family(
            &mut e,
            "markwatch_notices",
            None,
            Gauge,
            "Takedown notices by platform and state (draft, approved, filed, ...).",
        )?;
        for (platform, state, n) in &c.notices {
            let labels = [("platform", platform), ("state", state)];
            sample(&mut f, &labels, &ConstGauge::new(*n))?;
        }
        let mut f = family(
            &mut e,
            "markwatch_alerts",
            None,
            Gauge,
            "Alert emails by kind and state (queued, sending, sent, failed_retrying, dead).",
        )?;
        for (kind, state, n) in &c.alerts {
            let labels = [("kind", kind), ("state", state)];
            sample(&mut f, &labels, &ConstGauge::new(*n))?;
        }
        ConstGauge::new(c.oldest_queued_alert_secs.unwrap_or(0.0)).encode(family(
            &mut e,
            "markwatch_alert_oldest_queued_age",
            seconds,
            Gauge,
            "Age of the oldest alert still waiting to be sent; 0 when none waits.",
        )?)?;

        let mut f = family(
            &mut e,
            "markwatch_schedule_runs",
            None,
            Counter,
            "Runs by watch, trigger (schedule, catch_up, resume, manual) and status.",
        )?;
        for (watch, trigger, status, n) in &c.schedule_runs {
            let labels = [("watch", watch), ("trigger", trigger), ("status", status)];
            sample(&mut f, &labels, &count(*n))?;
        }
        let mut f = family(
            &mut e,
            "markwatch_schedule_next_run_timestamp",
            seconds,
            Gauge,
            "When each watch runs next, Unix time.",
        )?;
        for s in &c.schedules {
            let next = ConstGauge::new(s.next_run_at.timestamp());
            sample(&mut f, &[("watch", &s.watch)], &next)?;
        }
        let mut f = family(
            &mut e,
            "markwatch_schedule_last_finished_timestamp",
            seconds,
            Gauge,
            "When each watch's last scheduled run finished, Unix time.",
        )?;
        for s in &c.schedules {
            let finished = s
                .last_finished_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
            if let Some(t) = finished {
                sample(
                    &mut f,
                    &[("watch", &s.watch)],
                    &ConstGauge::new(t.timestamp()),
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CrawlTotals, ScheduleRow};

    fn counts() -> MetricCounts {
        MetricCounts {
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
            schedule_runs: vec![("fast".into(), "schedule".into(), "ok".into(), 3)],
            schedules: vec![ScheduleRow {
                watch: "fast".into(),
                cron: "0 * * * * *".into(),
                next_slot: DateTime::from_timestamp(1_800_000_060, 0).unwrap(),
                next_run_at: DateTime::from_timestamp(1_800_000_060, 0).unwrap(),
                resume_slot: None,
                last_slot: None,
                last_started_at: None,
                last_finished_at: Some("2027-01-15T08:00:05.000Z".into()),
                last_status: Some("ok".into()),
            }],
            workers_alive: 3,
            jobs: vec![crate::store::PlatformJobs {
                platform: "jd".into(),
                queued: 2,
                running: 1,
                lag_secs: 12.5,
            }],
            ..MetricCounts::default()
        }
    }

    #[test]
    fn renders_families_samples_and_histograms() {
        let text = render(counts(), Utc::now(), Format::Prometheus);
        for line in [
            "# TYPE markwatch_build_info gauge",
            "# TYPE markwatch_pages_fetched_total counter",
            "markwatch_pages_fetched_total{platform=\"jd\",outcome=\"blocked\"} 3",
            "markwatch_page_retries_total{platform=\"jd\"} 2",
            "markwatch_listings_new_total{platform=\"jd\"} 40",
            "# TYPE markwatch_crawl_duration_seconds histogram",
            "markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"1\"} 0",
            "markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"5\"} 1",
            "markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"3600\"} 2",
            "markwatch_crawl_duration_seconds_bucket{platform=\"jd\",le=\"+Inf\"} 2",
            "markwatch_crawl_duration_seconds_sum{platform=\"jd\"} 11.5",
            "markwatch_crawl_duration_seconds_count{platform=\"jd\"} 2",
            "# TYPE markwatch_start_time_seconds gauge",
            "markwatch_matches{platform=\"jd\",verdict=\"infringing\"} 7",
            "markwatch_alerts{kind=\"immediate\",state=\"queued\"} 2",
            "markwatch_alert_oldest_queued_age_seconds 42.5",
            "markwatch_evidence_pages 0",
            "markwatch_workers_alive 3",
            "markwatch_jobs{platform=\"jd\",state=\"queued\"} 2",
            "markwatch_jobs{platform=\"jd\",state=\"running\"} 1",
            "markwatch_job_lag_seconds{platform=\"jd\"} 12.5",
            "markwatch_schedule_runs_total{watch=\"fast\",trigger=\"schedule\",status=\"ok\"} 3",
            "markwatch_schedule_next_run_timestamp_seconds{watch=\"fast\"} 1800000060",
            "markwatch_schedule_last_finished_timestamp_seconds{watch=\"fast\"} 1800000005",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(
            text.lines()
                .any(|l| l.starts_with("markwatch_build_info{version=\"") && l.ends_with("\"} 1")),
            "{text}"
        );
        // Every sample line is `name{labels} value` with a numeric value; no OpenMetrics trailer.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let value = l.rsplit(' ').next().unwrap();
            assert!(value.parse::<f64>().is_ok(), "{l}");
        }
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }

    #[test]
    fn openmetrics_keeps_the_sample_names() {
        let text = render(counts(), Utc::now(), Format::OpenMetrics);
        for line in [
            "# TYPE markwatch_build info",
            "# TYPE markwatch_pages_fetched counter",
            "markwatch_pages_fetched_total{platform=\"jd\",outcome=\"blocked\"} 3",
            "markwatch_listings_new_total{platform=\"jd\"} 40",
            "# TYPE markwatch_crawl_duration_seconds histogram",
            "# UNIT markwatch_crawl_duration_seconds seconds",
            // OpenMetrics writes bounds as floats, and the client puts `le` first.
            "markwatch_crawl_duration_seconds_bucket{le=\"5.0\",platform=\"jd\"} 1",
            "markwatch_crawl_duration_seconds_bucket{le=\"+Inf\",platform=\"jd\"} 2",
            "markwatch_crawl_duration_seconds_count{platform=\"jd\"} 2",
            "markwatch_alert_oldest_queued_age_seconds 42.5",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        let c = MetricCounts {
            listings: vec![("a\"b\\c\nd".into(), 1)],
            ..MetricCounts::default()
        };
        for format in [Format::Prometheus, Format::OpenMetrics] {
            let text = render(c.clone(), Utc::now(), format);
            assert!(
                text.contains("markwatch_listings{platform=\"a\\\"b\\\\c\\nd\"} 1"),
                "{text}"
            );
        }
    }

    #[test]
    fn negotiates_the_format_from_accept() {
        use Format::{OpenMetrics, Prometheus};
        for (accept, format) in [
            (None, Prometheus),
            (Some("*/*"), Prometheus),
            (Some("text/plain"), Prometheus),
            // Prometheus 2.x and 3.x.
            (
                Some(
                    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                     version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            (
                Some(
                    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,\
                     application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=1.0.0;\
                     escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1",
                ),
                OpenMetrics,
            ),
            // Prometheus with scrape_protocols: [PrometheusText0.0.4].
            (Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Prometheus),
            (
                Some("text/plain, application/openmetrics-text; q=0.5"),
                Prometheus,
            ),
            (Some("application/openmetrics-text; q=0"), Prometheus),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
        assert_eq!(Prometheus.content_type(), CONTENT_TYPE);
        assert_eq!(
            OpenMetrics.content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8"
        );
    }
}
