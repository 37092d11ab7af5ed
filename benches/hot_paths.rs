//! Micro-benchmarks of the hot paths: parsing a client frame, serializing
//! a broadcast (once per message, whatever the room's size) and committing
//! a batch of messages to SQLite. Run with `cargo bench`; CI only builds
//! them (`cargo bench --no-run`). Figures are in `docs/performance.md`.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use walkie::db::{self, queries};
use walkie::domain::{Channel, RoomName, Text, UserName};
use walkie::protocol::{decode, encode, ChatMessage, MessageFrame};
use walkie::store::{Batch, CursorKind, CursorMove, NewMessage};

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
        room: Channel::parse("lobby").expect("a valid room name"),
        from: UserName::parse("alice").expect("a valid name"),
        text: "x".repeat(100),
        ts: "2026-11-24T20:01:02.345Z".into(),
    };
    let mut group = c.benchmark_group("broadcast_serialization");
    group.throughput(Throughput::Elements(1));
    group.bench_function("message_frame", |b| {
        b.iter(|| encode(&MessageFrame { frame: std::hint::black_box(&message), reference: None }))
    });
    group.finish();
}

fn channel(name: &str) -> Channel {
    Channel::parse(name).expect("a valid channel name")
}

fn text(text: String) -> Text {
    Text::parse(text, 4000).expect("a valid text")
}

/// A migrated database in a temporary directory, deleted with the guard.
fn fresh_database() -> (tempfile::TempDir, db::DbPool) {
    let dir = tempfile::TempDir::new().expect("a temporary directory");
    let url = dir.path().join("bench.db").to_string_lossy().into_owned();
    let pool = db::open(&url, 1).expect("a fresh database");
    (dir, pool)
}

fn batch_insert(c: &mut Criterion) {
    let (_dir, pool) = fresh_database();
    let mut conn = pool.get().expect("a connection");
    let from = UserName::parse("alice").expect("a valid name");
    let mut group = c.benchmark_group("batch_insert");
    for size in [1usize, 16, 256] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_function(format!("{size}_messages"), |b| {
            b.iter_batched(
                || Batch {
                    messages: (0..size)
                        .map(|i| NewMessage {
                            channel: channel(&format!("room{}", i % 8)),
                            from: from.clone(),
                            text: text("x".repeat(100)),
                            idempotency_key: None,
                        })
                        .collect(),
                    ..Batch::default()
                },
                |batch| queries::commit(&mut conn, &batch).expect("a commit"),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// Rooms in [`batch_insert_rooms`], with [`MEMBERS`] joined senders each:
/// the shape of `walkie-bench rooms` (500 rooms of 10).
const ROOMS: usize = 500;
const MEMBERS: usize = 10;
/// Messages per batch: what the writer commits at 15,000 msgs/s in the
/// rooms workload (one batch per ~2 ms).
const ROOMS_BATCH: usize = 30;

/// A batch commit as the rooms workload makes them: each message from a
/// different member of a different room, every sender with a cursor that
/// follows their own messages. Each message dirties its room's index leaf
/// and its sender's cursor row, unlike [`batch_insert`]'s 8 rooms.
fn batch_insert_rooms(c: &mut Criterion) {
    let (_dir, pool) = fresh_database();
    let mut conn = pool.get().expect("a connection");
    let member = |k: usize| {
        let user = UserName::parse(format!("u{k}")).expect("a valid name");
        (user, channel(&format!("r{}", k / MEMBERS)))
    };
    let joins = Batch {
        rooms: (0..ROOMS)
            .map(|r| RoomName::parse(format!("r{r}")).expect("a valid room name"))
            .collect(),
        cursors: (0..ROOMS * MEMBERS)
            .map(|k| {
                let (reader, channel) = member(k);
                CursorMove { reader, channel, to: 0, kind: CursorKind::Start }
            })
            .collect(),
        ..Batch::default()
    };
    queries::commit(&mut conn, &joins).expect("the joins");
    let mut next = 0usize;
    // With `mention`, each text names another member of its room: the
    // writer then stores a mention row in the same transaction.
    let mut batch = |mention: bool| Batch {
        messages: (0..ROOMS_BATCH)
            .map(|_| {
                // A stride coprime with the member count visits them all.
                next = (next + 7919) % (ROOMS * MEMBERS);
                let (from, channel) = member(next);
                let mut text = "x".repeat(100);
                if mention {
                    let room_start = next - next % MEMBERS;
                    text += &format!(" @u{}", room_start + (next + 1) % MEMBERS);
                }
                NewMessage { channel, from, text: self::text(text), idempotency_key: None }
            })
            .collect(),
        ..Batch::default()
    };
    let mut group = c.benchmark_group("batch_insert_rooms");
    group.throughput(Throughput::Elements(ROOMS_BATCH as u64));
    // Wall time, fsync waits included; then the writer thread's CPU time
    // alone, which is what the writer takes from a shared core.
    group.bench_function(format!("{ROOMS_BATCH}_messages"), |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            for _ in 0..iters {
                queries::commit(&mut conn, &batch(false)).expect("a commit");
            }
            start.elapsed()
        })
    });
    if thread_cpu().is_some() {
        for (name, mention) in [("messages_cpu", false), ("messages_mentioning_cpu", true)] {
            group.bench_function(format!("{ROOMS_BATCH}_{name}"), |b| {
                b.iter_custom(|iters| {
                    let start = thread_cpu().unwrap_or_default();
                    for _ in 0..iters {
                        let batch = batch(mention);
                        queries::commit(&mut conn, &batch).expect("a commit");
                    }
                    thread_cpu().unwrap_or_default().saturating_sub(start)
                })
            });
        }
    }
    group.finish();
}

/// Time this thread has spent on a CPU, from Linux's schedstat; `None`
/// elsewhere.
fn thread_cpu() -> Option<std::time::Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos = stat.split_whitespace().next()?.parse().ok()?;
    Some(std::time::Duration::from_nanos(nanos))
}

criterion_group!(benches, frame_parse, broadcast_serialization, batch_insert, batch_insert_rooms);
criterion_main!(benches);
