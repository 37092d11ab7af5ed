//! [`Metrics`]: what `/metrics` exposes, in Prometheus' text format.
//!
//! One registry per [`crate::Walkie`], not the process-wide default, so
//! that several servers in one process (tests, or an app embedding two)
//! keep their own figures. Counters are bumped where things happen; gauges
//! are read when `/metrics` is scraped.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

use crate::error::ErrorCode;

/// Every metric walkie exports; see the module doc.
pub struct Metrics {
    registry: Registry,
    /// Open WebSocket connections.
    pub connections: IntGauge,
    /// Rooms that exist (direct conversations excluded).
    pub rooms: IntGauge,
    /// Sessions in rooms, summed over rooms.
    pub members: IntGauge,
    /// Messages taken for storage (from sockets and HTTP).
    pub received: IntCounter,
    /// `message` frames queued for sessions (one per recipient).
    pub delivered: IntCounter,
    /// Client frames answered with an error, by code.
    pub rejected: IntCounterVec,
    /// Messages per committed batch (group commit).
    pub batch_size: Histogram,
    /// Time from handing a batch to the writer to its answer.
    pub commit_seconds: Histogram,
    /// Messages and room creations waiting for the writer.
    pub persistence_queue: IntGauge,
    /// Requests waiting for the notification worker.
    pub notification_queue: IntGauge,
    /// Sessions whose backlog is over `--max-outbound-bytes` (closed if it
    /// stays so for 2 s).
    pub slow_sessions: IntGauge,
    /// Stored messages heard of from other nodes (cluster mode).
    pub remote_messages: IntCounter,
    /// Reads of missed messages from the store (a gap, or a channel behind it).
    pub gap_reads: IntCounter,
    /// Messages those reads returned.
    pub gap_messages: IntCounter,
}

impl Metrics {
    /// Every metric, registered in a fresh registry under the `walkie_` prefix.
    ///
    /// Long because it is a list: one line (name and help) per metric.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new_custom(Some("walkie".into()), None)?;
        let gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let gauge = IntGauge::new(name, help)?;
            registry.register(Box::new(gauge.clone()))?;
            Ok(gauge)
        };
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let counter = IntCounter::new(name, help)?;
            registry.register(Box::new(counter.clone()))?;
            Ok(counter)
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let histogram = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
            registry.register(Box::new(histogram.clone()))?;
            Ok::<_, prometheus::Error>(histogram)
        };
        let rejected = IntCounterVec::new(
            Opts::new("frames_rejected_total", "Client frames answered with an error, by code"),
            &["code"],
        )?;
        registry.register(Box::new(rejected.clone()))?;
        Ok(Self {
            connections: gauge("connections", "Open WebSocket connections")?,
            rooms: gauge("rooms", "Rooms that exist")?,
            members: gauge("room_members", "Sessions in rooms, summed over rooms")?,
            received: counter("messages_received_total", "Messages taken for storage")?,
            delivered: counter("messages_delivered_total", "Message frames queued for sessions")?,
            rejected,
            batch_size: histogram(
                "persistence_batch_size",
                "Messages per committed batch",
                prometheus::exponential_buckets(1.0, 2.0, 11)?,
            )?,
            commit_seconds: histogram(
                "persistence_commit_seconds",
                "Time to commit one batch",
                prometheus::exponential_buckets(0.0005, 2.0, 14)?,
            )?,
            persistence_queue: gauge("persistence_queue_depth", "Writes waiting for the writer")?,
            notification_queue: gauge(
                "notification_queue_depth",
                "Requests waiting for the notification worker",
            )?,
            slow_sessions: gauge(
                "slow_sessions",
                "Sessions with more than --max-outbound-bytes waiting for their client",
            )?,
            remote_messages: counter(
                "cluster_messages_received_total",
                "Stored messages heard of from other nodes",
            )?,
            gap_reads: counter("gap_reads_total", "Reads of missed messages from the store")?,
            gap_messages: counter("gap_messages_total", "Messages read back from the store")?,
            registry,
        })
    }

    /// Counts a frame answered with `code`.
    pub fn reject(&self, code: ErrorCode) {
        self.rejected.with_label_values(&[code.as_str()]).inc();
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|error| prometheus::Error::Msg(error.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_exported_with_the_walkie_prefix() {
        let metrics = Metrics::new().unwrap();
        metrics.reject(ErrorCode::BadJson);
        metrics.batch_size.observe(3.0);
        let text = metrics.render().unwrap();
        for name in [
            "walkie_connections",
            "walkie_rooms",
            "walkie_room_members",
            "walkie_messages_received_total",
            "walkie_messages_delivered_total",
            "walkie_frames_rejected_total{code=\"bad_json\"} 1",
            "walkie_persistence_batch_size_bucket",
            "walkie_persistence_commit_seconds_bucket",
            "walkie_persistence_queue_depth",
            "walkie_notification_queue_depth",
            "walkie_slow_sessions",
        ] {
            assert!(text.contains(name), "{name} missing from\n{text}");
        }
    }
}
