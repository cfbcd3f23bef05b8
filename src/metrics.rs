//! What kiroku counts while it runs, for an operator's Prometheus: one process-wide set of
//! counters, gauges and histograms that every module records into, the way it logs through
//! `tracing` (recording never fails and calls nothing). `GET /metrics` (operator token) renders
//! them with the values only a scrape can read (spool depths, deliveries by state) added.
//!
//! No label carries personal data or an interview's id: labels are region ids, outcomes and
//! refusal codes, all from closed sets.
//!
//! The `prometheus` crate (TiKV's, without its protobuf default) keeps the text format and the
//! histogram buckets right; its `process` collector adds CPU seconds, resident memory and open
//! file descriptors.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Every series kiroku records.
pub struct Metrics {
    registry: Registry,
    /// Interviews being captured now (WebSocket, PUT, WHIP or `ingest`).
    pub live_captures: IntGauge,
    /// HTTP connections open now.
    pub connections_open: IntGauge,
    /// Segments sealed, stored and catalogued (acknowledged).
    pub segments_stored: IntCounter,
    /// Media bytes received from front-ends.
    pub bytes_in: IntCounter,
    /// From a segment leaving the cutter to its acknowledgement: seal, store, fsync, catalog.
    pub seal_store_seconds: Histogram,
    /// Live streams: how long after its last media was recorded a segment was acknowledged
    /// (the stream's first segment sets the clock), as a front-end would feel it.
    pub ack_lag_seconds: Histogram,
    /// Captures ended, by how (`finished`, or the stop reason's code).
    pub captures_ended: IntCounterVec,
    /// Spooled objects uploaded to S3, by region and outcome (`ok`, `failed`).
    pub uploads: IntCounterVec,
    /// Release decisions by outcome (`allowed`, or the refusal's code).
    pub release_decisions: IntCounterVec,
    /// Segments analysed, and how long after being stored each was analysed.
    pub analysis_lag_seconds: Histogram,
    /// Requests refused at the edge because a bound was reached, by which.
    pub refused: IntCounterVec,
    /// Audit checkpoints published outside the data dir, by sink (`s3`, `witness`) and outcome.
    pub checkpoints_published: IntCounterVec,
}

/// Buckets for latencies from a millisecond to a minute.
const LATENCY: &[f64] = &[
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// The process's metrics.
pub static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

impl Metrics {
    fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("kiroku".into()), None).expect("a constant prefix is valid");
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("registered once");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let counters = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("registered once");
            c
        };
        let histogram = |name: &str, help: &str| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY.to_vec()))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("registered once");
            h
        };
        #[cfg(target_os = "linux")]
        {
            let process = prometheus::process_collector::ProcessCollector::for_self();
            registry
                .register(Box::new(process))
                .expect("registered once");
        }
        Metrics {
            live_captures: gauge("live_captures", "Interviews being captured now."),
            connections_open: gauge("connections_open", "HTTP connections open now."),
            segments_stored: counter(
                "segments_stored_total",
                "Segments sealed, stored and catalogued (acknowledged).",
            ),
            bytes_in: counter("bytes_in_total", "Media bytes received from front-ends."),
            seal_store_seconds: histogram(
                "segment_seal_store_seconds",
                "From a segment leaving the cutter to its acknowledgement.",
            ),
            ack_lag_seconds: histogram(
                "ack_lag_seconds",
                "Live streams: acknowledgement time past the recording of the segment's end.",
            ),
            captures_ended: counters(
                "captures_ended_total",
                "Captures ended, by outcome.",
                &["outcome"],
            ),
            checkpoints_published: counters(
                "audit_checkpoints_published_total",
                "Audit checkpoints published outside the data dir, by sink and outcome.",
                &["sink", "outcome"],
            ),
            uploads: counters(
                "uploads_total",
                "Spooled objects uploaded to S3, by region and outcome.",
                &["region", "outcome"],
            ),
            release_decisions: counters(
                "release_decisions_total",
                "Release decisions, by outcome.",
                &["outcome"],
            ),
            analysis_lag_seconds: histogram(
                "analysis_lag_seconds",
                "From a segment's storing to its analysis.",
            ),
            refused: counters(
                "refused_total",
                "Requests refused because a bound was reached, by bound.",
                &["bound"],
            ),
            registry,
        }
    }

    /// The Prometheus text exposition of every series, followed by `extra` (series read at
    /// scrape time by the caller, already in the text format).
    pub fn render(&self, extra: &str) -> String {
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        let mut text = String::from_utf8(out).unwrap_or_default();
        text.push_str(extra);
        text
    }
}

/// Records `d` in `histogram`, in seconds.
pub fn observe(histogram: &Histogram, d: Duration) {
    histogram.observe(d.as_secs_f64());
}

/// A gauge counted up while a value of this type lives.
pub struct Held(&'static IntGauge);

impl Held {
    pub fn new(gauge: &'static IntGauge) -> Held {
        gauge.inc();
        Held(gauge)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_series_with_the_kiroku_prefix_and_appends_the_extra_lines() {
        METRICS.segments_stored.inc();
        METRICS
            .release_decisions
            .with_label_values(&["allowed"])
            .inc();
        let text = METRICS.render("kiroku_spool_bytes{region=\"jp\"} 0\n");
        assert!(text.contains("# TYPE kiroku_segments_stored_total counter"));
        assert!(text.contains("kiroku_release_decisions_total{outcome=\"allowed\"}"));
        assert!(text.contains("kiroku_ack_lag_seconds_bucket{le=\"0.5\"}"));
        assert!(text.ends_with("kiroku_spool_bytes{region=\"jp\"} 0\n"));
    }

    #[test]
    fn a_held_gauge_counts_down_when_dropped() {
        let gauge: &'static IntGauge = Box::leak(Box::new(IntGauge::new("g", "g").unwrap()));
        let held = Held::new(gauge);
        let second = Held::new(gauge);
        assert_eq!(gauge.get(), 2);
        drop(held);
        drop(second);
        assert_eq!(gauge.get(), 0);
    }
}
