//! Micro-benchmarks of the hot paths: parsing a client frame, serializing
//! a broadcast (once per message, whatever the room's size) and committing
//! a batch of messages to SQLite. Run with `cargo bench`; CI only builds
//! them (`cargo bench --no-run`). Figures are in `docs/performance.md`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use walkie::db::{self, queries};
use walkie::domain::UserName;
use walkie::protocol::{decode, encode, ChatMessage, MessageFrame};
use walkie::store::{Batch, NewMessage};

/// A `say` as a client sends it: 100 bytes of text, like the load generator's.
const SAY: &str = r#"{"type":"say","room":"lobby","text":"lg:1:123456789:xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx","ref":"42"}"#;

fn frame_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("frame_parse");
    group.throughput(Throughput::Elements(1));
    group.bench_function("say", |b| b.iter(|| decode(std::hint::black_box(SAY), 4000)));
    group.finish();
}

fn broadcast_serialization(c: &mut Criterion) {
    let message = ChatMessage {
        id: 12345,
        room: "lobby".into(),
        from: UserName::parse("alice").expect("a valid name"),
        text: "x".repeat(100),
        ts: "2026-11-24T20:01:02.345Z".into(),
    };
    let mut group = c.benchmark_group("broadcast_serialization");
    group.throughput(Throughput::Elements(1));
    group.bench_function("message_frame", |b| {
        b.iter(|| {
            encode(&MessageFrame { message: std::hint::black_box(&message), reference: None })
        })
    });
    group.finish();
}

fn batch_insert(c: &mut Criterion) {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let url = dir.path().join("bench.db").to_string_lossy().into_owned();
    let pool = db::open(&url, 1).expect("a fresh database");
    let mut conn = pool.get().expect("a connection");
    let mut last_ids = std::collections::HashMap::new();
    let from = UserName::parse("alice").expect("a valid name");
    let mut group = c.benchmark_group("batch_insert");
    for size in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("{size}_messages"), |b| {
            b.iter_batched(
                || Batch {
                    messages: (0..size)
                        .map(|i| NewMessage {
                            channel: format!("room{}", i % 8),
                            from: from.clone(),
                            text: "x".repeat(100),
                            idempotency_key: None,
                        })
                        .collect(),
                    ..Batch::default()
                },
                |batch| queries::commit(&mut conn, &mut last_ids, &batch).expect("a commit"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, frame_parse, broadcast_serialization, batch_insert);
criterion_main!(benches);
