//! walkie-bench against a real walkie on 127.0.0.1:0 with a SQLite file in
//! a temp dir: every workload runs and reports what happened. Steps are
//! tiny and the latency bar is out of the way (`--p99-ms`): these tests
//! check counting, not speed.

// A test's unwrap is one of its assertions.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Command;

use serde_json::Value;
use walkie::app::Application;
use walkie::config::Config;

/// Starts walkie on its own thread; it runs until the test process ends.
fn serve(tweak: impl FnOnce(&mut Config) + Send + 'static) -> (SocketAddr, tempfile::TempDir) {
    let dir = tempfile::TempDir::new().unwrap();
    let database = dir.path().join("bench.db").to_string_lossy().into_owned();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        actix_web::rt::System::new().block_on(async move {
            let mut config = Config {
                bind: "127.0.0.1:0".into(),
                workers: Some(1),
                rate: 100_000.0,
                burst: 100_000,
                ..Config::with_database(database)
            };
            tweak(&mut config);
            let application = Application::build(config).await.unwrap();
            address_tx.send(application.address()).unwrap();
            application.run_until_stopped(std::future::pending()).await
        })
    });
    let address = address_rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap();
    (address, dir)
}

/// Runs walkie-bench; its JSON summary, or its error text.
fn bench(address: SocketAddr, args: &[&str]) -> Result<Value, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_walkie-bench"))
        .arg("--addr")
        .arg(address.to_string())
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() {
        return Err(stderr);
    }
    let stdout = String::from_utf8(output.stdout).unwrap();
    Ok(serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}")))
}

const RELAXED: &[&str] = &["--step-secs", "1", "--drain-secs", "5", "--p99-ms", "60000"];

#[test]
fn fanout_counts_every_delivery_of_every_member() {
    let (address, _dir) = serve(|_| {});
    let mut args = vec!["fanout", "--members", "20", "--senders", "2", "--rates", "40"];
    args.extend(RELAXED);
    let summary = bench(address, &args).unwrap();
    let step = &summary["steps"][0];
    assert_eq!(step["msgs_per_s"], 40.0, "{summary}");
    assert_eq!(step["deliveries_per_s"], 800.0, "40 messages x 20 members: {summary}");
    assert_eq!(step["loss_pct"], 0.0, "{summary}");
    assert_eq!(step["errors"], 0, "{summary}");
    assert_eq!(summary["best"], *step, "the only step passed: {summary}");
}

#[test]
fn rooms_deliver_within_each_room_only() {
    let (address, _dir) = serve(|_| {});
    let mut args = vec!["rooms", "--rooms", "3", "--members", "4", "--rates", "5"];
    args.extend(RELAXED);
    let summary = bench(address, &args).unwrap();
    let step = &summary["steps"][0];
    // 12 members x 5 messages/s, each reaching the 4 members of its room.
    assert_eq!(step["msgs_per_s"], 60.0, "{summary}");
    assert_eq!(step["deliveries_per_s"], 240.0, "{summary}");
    assert_eq!(step["ok"], true, "{summary}");
}

#[test]
fn flood_control_fails_the_step_with_the_servers_error() {
    let (address, _dir) = serve(|config| {
        config.rate = 2.0;
        config.burst = 2;
    });
    let mut args = vec!["fanout", "--members", "2", "--senders", "1", "--rates", "50"];
    args.extend(RELAXED);
    let summary = bench(address, &args).unwrap();
    let step = &summary["steps"][0];
    assert!(step["errors"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(step["ok"], false, "{summary}");
    assert!(summary["best"].is_null(), "no step passed: {summary}");
}

#[test]
fn store_reports_acknowledged_messages() {
    let (address, dir) = serve(|_| {});
    let summary =
        bench(address, &["store", "--senders", "3", "--window", "4", "--secs", "1"]).unwrap();
    assert!(summary["stored_per_s"].as_f64().unwrap() > 0.0, "{summary}");
    assert_eq!(summary["errors"], 0, "{summary}");
    assert_eq!(summary["closed"], 0, "{summary}");
    assert!(dir.path().join("bench.db").exists());
}

#[test]
fn connect_and_idle_report_handshakes_and_memory() {
    let (address, _dir) = serve(|_| {});
    let summary = bench(address, &["connect", "--conns", "30"]).unwrap();
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(summary["handshakes_per_s"].as_f64().unwrap() > 0.0, "{summary}");

    let pid = std::process::id().to_string();
    let args = ["--pid", &pid, "idle", "--conns", "30", "--room-size", "10", "--hold-secs", "0.5"];
    let summary = bench(address, &args).unwrap();
    assert!(summary["rss_per_conn_kib"].is_number(), "{summary}");
    assert!(summary["rss_after_kib"].as_u64().unwrap() > 0, "{summary}");
    assert_eq!(summary["closed"], 0, "{summary}");
}

#[test]
fn a_server_with_a_secret_needs_the_secret() {
    let (address, _dir) =
        serve(|config| config.auth_secret = Some(walkie::config::Secret::new("s3cret")));
    let refused = bench(address, &["connect", "--conns", "1"]).unwrap();
    assert_eq!(refused["failed"], 1, "{refused}");
    assert!(refused["first_error"].as_str().unwrap().contains("401"), "{refused}");
    let accepted = bench(address, &["--secret", "s3cret", "connect", "--conns", "3"]).unwrap();
    assert_eq!(accepted["failed"], 0, "{accepted}");
}
