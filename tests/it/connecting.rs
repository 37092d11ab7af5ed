//! The handshake: names, `welcome`, several sessions of one name.

use serde_json::json;

use crate::support::{refused_upgrade, TestApp, TestClient};

#[tokio::test]
async fn welcome_is_the_first_frame_and_names_the_session() {
    let app = TestApp::spawn();
    let mut client = TestClient::connect(&app.ws_url("?name=alice")).await;
    let welcome = client.recv().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["name"], "alice");
    assert!(welcome["session"].as_str().unwrap().starts_with("s-"));
    assert_eq!(welcome["server"], format!("walkie/{}", env!("CARGO_PKG_VERSION")));
}

#[tokio::test]
async fn a_client_without_a_name_gets_a_guest_name() {
    let app = TestApp::spawn();
    let mut client = TestClient::connect(&app.ws_url("")).await;
    let welcome = client.expect("welcome").await;
    let name = welcome["name"].as_str().unwrap();
    assert_eq!(name.len(), "guest-0000".len());
    assert!(name.starts_with("guest-"));
    assert!(name[6..].chars().all(|c| c.is_ascii_hexdigit()), "{name}");
}

#[tokio::test]
async fn invalid_names_are_refused_with_400_before_the_upgrade() {
    let app = TestApp::spawn();
    for query in ["?name=", "?name=al%20ice", "?name=%3Cb%3E", &format!("?name={}", "x".repeat(33))]
    {
        let (status, reason) = refused_upgrade(&app.ws_url(query)).await;
        assert_eq!(status, 400, "{query}");
        assert!(reason.contains("name"), "a readable reason: {reason}");
    }
    let mut longest = app.client(&"x".repeat(32)).await;
    longest.send(json!({"type": "rooms"})).await;
    longest.expect("rooms").await;
}

#[tokio::test]
async fn sessions_of_one_name_are_separate_channels() {
    let app = TestApp::spawn();
    let mut tab1 = app.client("alice").await;
    let mut tab2 = app.client("alice").await;
    assert_ne!(tab1.session, tab2.session);
    tab1.join("lobby").await;
    // Membership is per session: the second tab has not joined.
    let error = tab2.error_for(json!({"type": "say", "room": "lobby", "text": "hi"})).await;
    assert_eq!(error["code"], "not_in_room");
    tab1.say("lobby", "from tab one").await;
    tab2.expect_silence(std::time::Duration::from_millis(300)).await;
}
