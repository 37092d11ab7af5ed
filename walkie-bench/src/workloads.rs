//! The workloads: rate sweeps (fanout, rooms), closed-loop storing (store),
//! memory per connection (idle), handshakes per second (connect) and a
//! node's death in a cluster (failover).

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::MissedTickBehavior;

use crate::conn::{self, node_of, Command, Server, Window};
use crate::procs::Procs;
use crate::report;
use crate::stats::Shared;
use crate::{Sweep, Target};

/// Open connections: the channel to each one's task.
type Outs = Vec<UnboundedSender<String>>;

/// Which connections send, and to which room.
type Senders = Vec<(usize, String)>;

/// A doubling sweep stops after this many steps even if all pass.
const MAX_DOUBLINGS: usize = 16;

/// Opens one connection per `(user, room)` of `plan` and joins it;
/// `window` makes a connection a closed-loop sender instead.
async fn open_all(
    target: &Target,
    servers: &[Server],
    shared: &Rc<Shared>,
    plan: &[(String, String)],
    window: impl Fn(usize) -> Option<Window>,
) -> Result<Outs, String> {
    let started = Instant::now();
    let mut opened: Vec<Option<conn::Socket>> = (0..plan.len()).map(|_| None).collect();
    let mut results = stream::iter(plan.iter().enumerate())
        .map(|(index, (user, room))| async move {
            let server = &servers[node_of(index, servers.len())];
            let mut ws = conn::open(target, server, index, user).await?;
            conn::join(&mut ws, room).await?;
            Ok::<_, String>((index, ws))
        })
        .buffer_unordered(target.concurrency.max(1));
    while let Some(result) = results.next().await {
        let (index, ws) = result.map_err(|error| format!("opening connections: {error}"))?;
        opened[index] = Some(ws);
    }
    eprintln!(
        "{} connections open and joined in {:.1} s",
        plan.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(opened
        .into_iter()
        .enumerate()
        .filter_map(|(index, ws)| {
            let node = node_of(index, servers.len());
            Some(conn::spawn(ws?, shared.clone(), window(index), node))
        })
        .collect())
}

/// One room, `members` connections, the first `senders` of them sending.
pub async fn fanout(
    target: &Target,
    sweep: &Sweep,
    members: usize,
    senders: usize,
) -> Result<Value, String> {
    let room = format!("{}-fanout", target.prefix);
    let plan: Vec<_> =
        (0..members).map(|i| (format!("{}f{i}", target.prefix), room.clone())).collect();
    let senders: Senders = (0..senders.min(members)).map(|i| (i, room.clone())).collect();
    let rates = |rate: f64| rate; // messages/s of all senders together
    let header = json!({"workload": "fanout", "members": members, "senders": senders.len()});
    run_sweep(target, sweep, &plan, &senders, members as u64, rates, header, 1000.0).await
}

/// `rooms` rooms of `members`, everybody sending.
pub async fn rooms(
    target: &Target,
    sweep: &Sweep,
    rooms: usize,
    members: usize,
) -> Result<Value, String> {
    let plan: Vec<_> = (0..rooms * members)
        .map(|i| {
            (format!("{}m{i}", target.prefix), format!("{}-room{}", target.prefix, i / members))
        })
        .collect();
    let senders: Senders =
        plan.iter().enumerate().map(|(i, (_, room))| (i, room.clone())).collect();
    let count = senders.len() as f64;
    let rates = move |rate: f64| rate * count; // rate is per member
    let header = json!({"workload": "rooms", "rooms": rooms, "members": members});
    run_sweep(target, sweep, &plan, &senders, members as u64, rates, header, 1.0).await
}

/// Opens `plan`, then runs the steps of `sweep`; `total(rate)` is the
/// messages/s all senders send together at `rate`.
#[allow(clippy::too_many_arguments)]
async fn run_sweep(
    target: &Target,
    sweep: &Sweep,
    plan: &[(String, String)],
    senders: &Senders,
    receivers: u64,
    total: impl Fn(f64) -> f64,
    mut summary: Value,
    default_start: f64,
) -> Result<Value, String> {
    let servers = conn::resolve(target).await?;
    let shared = Rc::new(Shared::new());
    let procs = Procs::new(&target.pid);
    let outs = open_all(target, &servers, &shared, plan, |_| None).await?;
    let nodes = servers.len();
    let step =
        Step { shared: &shared, procs: &procs, sweep, outs: &outs, senders, receivers, nodes };
    let mut steps: Vec<Value> = Vec::new();
    let mut best: Option<Value> = None;
    let run = |rate: f64, steps: &mut Vec<Value>| {
        let id = steps.len() as u32 + 1;
        step.run(id, rate, total(rate))
    };
    if sweep.rates.is_empty() {
        // Doubling until a step fails, then 1.25x, 1.5x, 1.75x of the last pass.
        let mut rate = sweep.start_rate.unwrap_or(default_start);
        let mut passed = None;
        loop {
            let row = run(rate, &mut steps).await;
            let ok = row["ok"] == true;
            steps.push(row.clone());
            if !ok || steps.len() >= MAX_DOUBLINGS {
                break;
            }
            passed = Some(rate);
            best = Some(row);
            rate *= 2.0;
        }
        for factor in passed.map_or(&[][..], |_| &[1.25, 1.5, 1.75]) {
            let row = run(passed.unwrap_or_default() * factor, &mut steps).await;
            let ok = row["ok"] == true;
            steps.push(row.clone());
            if !ok {
                break;
            }
            best = Some(row);
        }
    } else {
        for &rate in &sweep.rates {
            let row = run(rate, &mut steps).await;
            if row["ok"] == true {
                best = Some(row.clone());
            }
            steps.push(row);
        }
    }
    shared.stopping.set(true);
    summary["connections"] = json!(plan.len());
    summary["best"] = best.unwrap_or(Value::Null);
    summary["steps"] = json!(steps);
    Ok(summary)
}

/// What one sweep step needs.
struct Step<'a> {
    shared: &'a Shared,
    procs: &'a Procs,
    sweep: &'a Sweep,
    outs: &'a Outs,
    senders: &'a Senders,
    receivers: u64,
    /// Servers the connections are spread over.
    nodes: usize,
}

impl Step<'_> {
    /// Sends `total` messages/s for `step_secs`, round robin over the
    /// senders, then waits for the deliveries; see [`Sweep`] for when it passes.
    async fn run(&self, id: u32, rate: f64, total: f64) -> Value {
        let (shared, sweep) = (self.shared, self.sweep);
        shared.begin_step(id);
        let (errors, closed) = (shared.errors.get(), shared.closed.get());
        let mark = self.procs.mark();
        let start = Instant::now();
        let window = Duration::from_secs_f64(sweep.step_secs);
        let mut tick = tokio::time::interval(Duration::from_millis(1));
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut sent = 0u64;
        loop {
            tick.tick().await;
            let elapsed = start.elapsed().min(window);
            let due = (elapsed.as_secs_f64() * total) as u64;
            while sent < due {
                let (conn, room) = &self.senders[(sent % self.senders.len() as u64) as usize];
                let text = shared.text(sweep.size, node_of(*conn, self.nodes));
                let say = Command::Say { room, text: &text, reference: sent.to_string() };
                // ignore: a closed connection is counted by its task.
                let _ = self.outs[*conn].send(say.encode());
                sent += 1;
            }
            if elapsed >= window {
                break;
            }
        }
        let cpu = self.procs.cpu_since(&mark);
        let expected = sent * self.receivers;
        let drain_until = Instant::now() + Duration::from_secs_f64(sweep.drain_secs);
        while shared.received.get() < expected && Instant::now() < drain_until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let received = shared.received.get().min(expected);
        let loss = if expected == 0 { 0.0 } else { 1.0 - received as f64 / expected as f64 };
        let latency = shared.percentiles();
        let errors = shared.errors.get() - errors;
        let closed = shared.closed.get() - closed;
        let ok =
            latency.p99_ms <= sweep.p99_ms && loss <= sweep.max_loss && errors == 0 && closed == 0;
        let mut row = json!({
            "rate": rate,
            "msgs_per_s": (sent as f64 / sweep.step_secs).round(),
            "deliveries_per_s": (received as f64 / sweep.step_secs).round(),
            "p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms, "max_ms": latency.max_ms,
            "loss_pct": (loss * 1e5).round() / 1e3,
            "server_cpu_pct": cpu.server_cpu, "bench_cpu_pct": cpu.bench_cpu,
            "errors": errors, "closed": closed, "ok": ok,
        });
        if self.nodes > 1 {
            let cross = shared.cross_percentiles();
            row["cross_p50_ms"] = json!(cross.p50_ms);
            row["cross_p99_ms"] = json!(cross.p99_ms);
        }
        report::line(&format!("step {id}"), &row);
        if let Some(error) = shared.first_error.borrow().as_deref().filter(|_| errors > 0) {
            eprintln!("    first error: {error}");
        }
        row
    }
}

/// Closed loop: `senders` members of one room each keep `window` messages
/// waiting for their acknowledgement, for `secs`.
pub async fn store(
    target: &Target,
    senders: usize,
    window: usize,
    secs: Duration,
    size: usize,
) -> Result<Value, String> {
    let servers = conn::resolve(target).await?;
    let room = format!("{}-store", target.prefix);
    let plan: Vec<_> =
        (0..senders).map(|i| (format!("{}s{i}", target.prefix), room.clone())).collect();
    let shared = Rc::new(Shared::new());
    let procs = Procs::new(&target.pid);
    shared.begin_step(1);
    // Everyone is joined before anyone sends: the windows start together.
    let mut opened = Vec::new();
    for (index, (user, room)) in plan.iter().enumerate() {
        let node = node_of(index, servers.len());
        let mut ws = conn::open(target, &servers[node], index, user).await?;
        conn::join(&mut ws, room).await?;
        opened.push((ws, node));
    }
    let mark = procs.mark();
    let start = Instant::now();
    let outs: Outs = opened
        .into_iter()
        .map(|(ws, node)| {
            let window = Window { room: room.clone(), size: window, text_bytes: size };
            conn::spawn(ws, shared.clone(), Some(window), node)
        })
        .collect();
    tokio::time::sleep(secs).await;
    let acknowledged = shared.acknowledged.get();
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = procs.cpu_since(&mark);
    shared.stopping.set(true);
    let latency = shared.percentiles();
    drop(outs);
    let row = json!({
        "workload": "store", "senders": senders, "window": window,
        "stored_per_s": (acknowledged as f64 / elapsed).round(),
        "deliveries_per_s": (shared.received.get() as f64 / elapsed).round(),
        "p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms, "max_ms": latency.max_ms,
        "server_cpu_pct": cpu.server_cpu, "bench_cpu_pct": cpu.bench_cpu,
        "errors": shared.errors.get(), "closed": shared.closed.get(),
    });
    report::line("store", &row);
    Ok(row)
}

/// Holds `conns` joined connections; the server's RSS per connection.
pub async fn idle(
    target: &Target,
    conns: usize,
    room_size: usize,
    hold: Duration,
) -> Result<Value, String> {
    let servers = conn::resolve(target).await?;
    let procs = Procs::new(&target.pid);
    let shared = Rc::new(Shared::new());
    let before = procs.rss_kib();
    let plan: Vec<_> = (0..conns)
        .map(|i| {
            (
                format!("{}i{i}", target.prefix),
                format!("{}-idle{}", target.prefix, i / room_size.max(1)),
            )
        })
        .collect();
    let outs = open_all(target, &servers, &shared, &plan, |_| None).await?;
    let mark = procs.mark();
    tokio::time::sleep(hold).await;
    let cpu = procs.cpu_since(&mark);
    let after = procs.rss_kib();
    let per_connection = match (before, after) {
        (Some(before), Some(after)) => {
            json!(((after.saturating_sub(before)) as f64 / conns as f64 * 100.0).round() / 100.0)
        }
        _ => Value::Null,
    };
    let row = json!({
        "workload": "idle", "conns": conns, "room_size": room_size,
        "rss_before_kib": before, "rss_after_kib": after, "rss_per_conn_kib": per_connection,
        "server_cpu_pct": cpu.server_cpu, "closed": shared.closed.get(),
    });
    report::line("idle", &row);
    shared.stopping.set(true);
    drop(outs);
    Ok(row)
}

/// `conns` handshakes, `concurrency` at a time: open, `welcome`, close.
pub async fn connect(target: &Target, conns: usize) -> Result<Value, String> {
    let servers = &conn::resolve(target).await?;
    let procs = Procs::new(&target.pid);
    let mark = procs.mark();
    let start = Instant::now();
    let mut failed = 0u64;
    let mut first_error = None;
    let mut results = stream::iter(0..conns)
        .map(|index| async move {
            let name = format!("{}c{index}", target.prefix);
            let server = &servers[node_of(index, servers.len())];
            let mut ws = conn::open(target, server, index, &name).await?;
            // ignore: the handshake is what is measured; the close is courtesy.
            let _ = ws.close(None).await;
            Ok::<_, String>(())
        })
        .buffer_unordered(target.concurrency.max(1));
    while let Some(result) = results.next().await {
        if let Err(error) = result {
            failed += 1;
            first_error.get_or_insert(error);
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = procs.cpu_since(&mark);
    let row = json!({
        "workload": "connect", "conns": conns, "concurrency": target.concurrency,
        "handshakes_per_s": ((conns as u64 - failed) as f64 / elapsed).round(),
        "failed": failed, "first_error": first_error,
        "server_cpu_pct": cpu.server_cpu, "bench_cpu_pct": cpu.bench_cpu,
    });
    report::line("connect", &row);
    Ok(row)
}

/// `conns` joined connections on the first server; its process `victim`
/// is killed (kill -9), and each connection comes back on one of the other
/// servers with `since` (the last id it saw: none here, the rooms being
/// new), as a client would. Reports how long until every one had its
/// `joined` (history read: caught up), `concurrency` reconnecting at a time.
pub async fn failover(
    target: &Target,
    conns: usize,
    room_size: usize,
    victim: u32,
) -> Result<Value, String> {
    let servers = &conn::resolve(target).await?;
    if servers.len() < 2 {
        return Err("failover needs the victim's address and at least one other".into());
    }
    let plan: Vec<(String, String)> = (0..conns)
        .map(|i| {
            let room = format!("{}-fail{}", target.prefix, i / room_size.max(1));
            (format!("{}v{i}", target.prefix), room)
        })
        .collect();
    let started = Instant::now();
    let mut opening = stream::iter(plan.iter().enumerate())
        .map(|(index, (user, room))| async move {
            let mut ws = conn::open(target, &servers[0], index, user).await?;
            conn::join(&mut ws, room).await?;
            Ok::<_, String>(ws)
        })
        .buffer_unordered(target.concurrency.max(1));
    let mut sockets = Vec::with_capacity(conns);
    while let Some(ws) = opening.next().await {
        sockets.push(ws.map_err(|error| format!("opening connections: {error}"))?);
    }
    eprintln!(
        "{conns} connections on {} in {:.1} s",
        servers[0].host,
        started.elapsed().as_secs_f64()
    );
    let killed = std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .map_err(|error| format!("kill: {error}"))?;
    if !killed.success() {
        return Err(format!("kill -9 {victim} failed"));
    }
    let kill = Instant::now();
    // Each client notices its connection died, then reconnects elsewhere.
    let mut back = stream::iter(sockets.into_iter().zip(&plan).enumerate())
        .map(|(index, (mut ws, (user, room)))| async move {
            while let Some(Ok(_)) = ws.next().await {}
            let server = &servers[1 + index % (servers.len() - 1)];
            let mut ws = conn::open(target, server, index, user).await?;
            conn::join_since(&mut ws, room, Some(0)).await?;
            Ok::<_, String>((kill.elapsed(), ws))
        })
        .buffer_unordered(target.concurrency.max(1));
    let mut times = Vec::with_capacity(conns);
    let mut kept = Vec::with_capacity(conns);
    let mut failed = 0u64;
    while let Some(result) = back.next().await {
        match result {
            Ok((elapsed, ws)) => {
                times.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                kept.push(ws);
            }
            Err(error) => {
                failed += 1;
                eprintln!("a reconnection failed: {error}");
            }
        }
    }
    let all_back = kill.elapsed().as_secs_f64();
    let latency = crate::stats::percentiles(&mut times);
    let row = json!({
        "workload": "failover", "conns": conns, "room_size": room_size,
        "concurrency": target.concurrency, "failed": failed,
        "all_back_s": (all_back * 1000.0).round() / 1000.0,
        "p50_ms": latency.p50_ms, "p99_ms": latency.p99_ms, "max_ms": latency.max_ms,
    });
    report::line("failover", &row);
    drop(kept);
    Ok(row)
}
