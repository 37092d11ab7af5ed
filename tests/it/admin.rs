//! `walkie rooms` and `walkie history`: what an operator sees.

use std::process::Command;

use serde_json::json;

use crate::support::TestApp;

fn walkie(args: &[&str], database: &str) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_walkie"))
        .args(args)
        .arg("--database-url")
        .arg(database)
        .output()
        .expect("the binary runs");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[tokio::test]
async fn rooms_and_history_print_readable_tables() {
    let app = TestApp::spawn();
    let mut alice = app.member("alice", "lobby").await;
    alice.say("lobby", "first line").await;
    alice.say("lobby", "two\nlines").await;
    alice.join("empty").await;
    alice.send(json!({"type": "direct", "to": "bob", "text": "private"})).await;
    alice.expect("message").await;

    let (ok, rooms, _) = walkie(&["rooms"], app.database());
    assert!(ok);
    assert_eq!(rooms, "ROOM   MESSAGES\nempty  0\nlobby  2\n");

    let (ok, history, _) = walkie(&["history", "lobby"], app.database());
    assert!(ok);
    let lines: Vec<&str> = history.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0].starts_with("ID  TIME") && lines[0].ends_with("FROM   TEXT"));
    assert!(lines[1].starts_with("1   20") && lines[1].ends_with("alice  first line"));
    assert!(lines[2].ends_with("alice  two lines"), "one line per message");

    let (ok, paged, _) = walkie(&["history", "lobby", "--limit", "1"], app.database());
    assert!(ok && paged.contains("two lines") && paged.contains("--before 2"));
    let (ok, direct, _) = walkie(&["history", "@alice+bob"], app.database());
    assert!(ok && direct.contains("private"));
}

#[test]
fn a_missing_database_is_an_error_not_a_new_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let missing = dir.path().join("typo.db");
    let (ok, _, stderr) = walkie(&["rooms"], &missing.to_string_lossy());
    assert!(!ok);
    assert!(stderr.contains("no database at"), "{stderr}");
    assert!(!missing.exists());
}
