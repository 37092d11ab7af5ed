//! What every connection reports: deliveries of the current step, their
//! latency, acknowledgements, errors and closes.
//!
//! Each text the bench sends is `lg:<step>:<nanos>:<node>:xxx…`, `nanos`
//! being the time (on this process's clock) when the frame was handed to its
//! connection, `node` the index in `--addr` of the server it was sent to;
//! the receiver subtracts `nanos` from the same clock, and keeps the
//! latencies of messages sent through another node apart as well. Time a frame
//! waits behind a socket the server does not drain counts, so a slow server
//! cannot hide behind back-pressure. Frames of an earlier step are ignored,
//! so a backlog does not leak into the next step's figures.

use std::cell::{Cell, RefCell};
use std::time::Instant;

/// State shared by all connection tasks (one thread: `Cell`s, no locks).
pub struct Shared {
    start: Instant,
    step: Cell<u32>,
    /// Deliveries (message frames) of the current step.
    pub received: Cell<u64>,
    /// Acknowledgements (a sender's own copy, carrying its `ref`) of the current step.
    pub acknowledged: Cell<u64>,
    latencies_us: RefCell<Vec<u32>>,
    /// The latencies of deliveries from a sender on another node.
    cross_us: RefCell<Vec<u32>>,
    /// `error` frames received, and the first one.
    pub errors: Cell<u64>,
    /// The first `error` frame, to show why a step failed.
    pub first_error: RefCell<Option<String>>,
    /// Connections the server closed (or that failed).
    pub closed: Cell<u64>,
    /// Set when the run is over: closed-loop senders stop sending.
    pub stopping: Cell<bool>,
}

/// What a frame was, as far as the bench cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A message with this connection's `ref`: its acknowledgement.
    Acknowledged,
    /// Anything else.
    Other,
}

/// Latency percentiles of one step, in milliseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Percentiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Shared {
    /// Fresh counters; the latency clock starts now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            step: Cell::new(0),
            received: Cell::new(0),
            acknowledged: Cell::new(0),
            latencies_us: RefCell::new(Vec::new()),
            cross_us: RefCell::new(Vec::new()),
            errors: Cell::new(0),
            first_error: RefCell::new(None),
            closed: Cell::new(0),
            stopping: Cell::new(false),
        }
    }

    /// Starts step `id`: counters and latencies restart; older frames no longer count.
    pub fn begin_step(&self, id: u32) {
        self.step.set(id);
        self.received.set(0);
        self.acknowledged.set(0);
        self.latencies_us.borrow_mut().clear();
        self.cross_us.borrow_mut().clear();
    }

    /// A text of `size` bytes stamped with the current step, the time and
    /// the sender's `node`.
    pub fn text(&self, size: usize, node: usize) -> String {
        let (step, nanos) = (self.step.get(), self.start.elapsed().as_nanos());
        let mut text = format!("lg:{step}:{nanos}:{node}:");
        let pad = size.saturating_sub(text.len());
        text.extend(std::iter::repeat_n('x', pad));
        text
    }

    /// Counts one frame the server sent to a connection on `node`.
    pub fn on_frame(&self, frame: &str, node: usize) -> Seen {
        match frame_type(frame) {
            Some("message") => self.on_message(frame, node),
            Some("error") => {
                self.errors.set(self.errors.get() + 1);
                self.first_error.borrow_mut().get_or_insert_with(|| frame.to_owned());
                Seen::Other
            }
            _ => Seen::Other,
        }
    }

    fn on_message(&self, frame: &str, node: usize) -> Seen {
        let Some((step, nanos, origin)) = stamp(frame) else { return Seen::Other };
        if step != self.step.get() {
            return Seen::Other;
        }
        self.received.set(self.received.get() + 1);
        let elapsed = self.start.elapsed().as_nanos().saturating_sub(nanos);
        let micros = u32::try_from(elapsed / 1000).unwrap_or(u32::MAX);
        self.latencies_us.borrow_mut().push(micros);
        if origin != node {
            self.cross_us.borrow_mut().push(micros);
        }
        if frame.contains("\"ref\":\"") {
            self.acknowledged.set(self.acknowledged.get() + 1);
            Seen::Acknowledged
        } else {
            Seen::Other
        }
    }

    /// A connection ended (unless the bench is ending them itself).
    pub fn on_closed(&self) {
        if !self.stopping.get() {
            self.closed.set(self.closed.get() + 1);
        }
    }

    /// Percentiles of the current step's latencies.
    pub fn percentiles(&self) -> Percentiles {
        percentiles(&mut self.latencies_us.borrow_mut())
    }

    /// Percentiles of the current step's deliveries from another node.
    pub fn cross_percentiles(&self) -> Percentiles {
        percentiles(&mut self.cross_us.borrow_mut())
    }
}

/// The 50th, 99th and 100th percentiles of `latencies` (microseconds).
pub fn percentiles(latencies: &mut [u32]) -> Percentiles {
    latencies.sort_unstable();
    let at = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 - 1.0) * q).round() as usize;
        f64::from(latencies[index.min(latencies.len() - 1)]) / 1000.0
    };
    Percentiles { p50_ms: at(0.50), p99_ms: at(0.99), max_ms: at(1.0) }
}

/// The value of a frame's `type` field, found without parsing the whole
/// frame (the bench must stay cheaper than the server it measures).
pub fn frame_type(frame: &str) -> Option<&str> {
    let rest = &frame[frame.find("\"type\":\"")? + 8..];
    Some(&rest[..rest.find('"')?])
}

/// (step, nanos, node) from a text `lg:<step>:<nanos>:<node>:…` inside a
/// message frame.
fn stamp(frame: &str) -> Option<(u32, u128, usize)> {
    let rest = &frame[frame.find("\"text\":\"lg:")? + 11..];
    let mut fields = rest.splitn(4, ':');
    let step = fields.next()?.parse().ok()?;
    let nanos = fields.next()?.parse().ok()?;
    let node = fields.next()?.parse().ok()?;
    Some((step, nanos, node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_the_current_step_counts_with_its_latency() {
        let shared = Shared::new();
        shared.begin_step(3);
        let text = shared.text(40, 1);
        assert_eq!(text.len(), 40);
        let frame = format!(
            r#"{{"type":"message","room":"r","id":1,"from":"a","text":"{text}","ref":"7"}}"#
        );
        assert_eq!(shared.on_frame(&frame, 1), Seen::Acknowledged);
        assert_eq!(shared.received.get(), 1);
        assert_eq!(shared.cross_us.borrow().len(), 0, "sent through the same node");
        shared.on_frame(&frame, 0);
        assert_eq!(shared.cross_us.borrow().len(), 1, "sent through another node");
        shared.begin_step(4);
        assert_eq!(shared.on_frame(&frame, 1), Seen::Other, "an older step does not count");
        assert_eq!(shared.received.get(), 0);
    }

    #[test]
    fn errors_are_counted_and_kept() {
        let shared = Shared::new();
        shared.on_frame(r#"{"type":"error","code":"rate_limited","message":"slow down"}"#, 0);
        assert_eq!(shared.errors.get(), 1);
        assert!(shared.first_error.borrow().as_deref().is_some_and(|e| e.contains("rate_limited")));
        assert_eq!(frame_type(r#"{"type":"welcome"}"#), Some("welcome"));
    }
}
