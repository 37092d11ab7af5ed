//! Who may connect and post: tokens, origins, capacity, per-session caps.

use std::time::Duration;

use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use walkie::access::Tokens;
use walkie::config::Secret;
use walkie::domain::UserName;

use crate::support::{refused_upgrade, TestApp, TestClient};

const SECRET: &str = "test-secret";

fn secured() -> TestApp {
    TestApp::spawn_with(|config| config.auth_secret = Some(Secret::new(SECRET)))
}

fn token_for(name: &str) -> String {
    let name = UserName::parse(name).unwrap();
    Tokens::new(&Secret::new(SECRET)).mint(&name, Duration::from_secs(3600)).unwrap()
}

fn expired_token(name: &str) -> String {
    #[derive(serde::Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
    }
    let key = jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes());
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &Claims { sub: name, exp: 1_000_000 },
        &key,
    )
    .unwrap()
}

#[tokio::test]
async fn with_a_secret_the_token_names_the_user() {
    let app = secured();
    let url = app.ws_url(&format!("?name=mallory&token={}", token_for("alice")));
    let mut client = TestClient::connect(&url).await;
    assert_eq!(client.expect("welcome").await["name"], "alice", "the name parameter is ignored");
}

#[tokio::test]
async fn missing_malformed_forged_and_expired_tokens_get_401() {
    let app = secured();
    let forged = Tokens::new(&Secret::new("another-secret"))
        .mint(&UserName::parse("alice").unwrap(), Duration::from_secs(60))
        .unwrap();
    for query in [
        "?name=alice".to_owned(),
        "?token=not-a-jwt".to_owned(),
        format!("?token={forged}"),
        format!("?token={}", expired_token("alice")),
    ] {
        let (status, reason) = refused_upgrade(&app.ws_url(&query)).await;
        assert_eq!(status, 401, "{query}: {reason}");
        assert!(!reason.is_empty());
    }
}

#[tokio::test]
async fn without_a_secret_tokens_are_ignored() {
    let app = TestApp::spawn();
    let mut client = TestClient::connect(&app.ws_url("?name=bob&token=whatever")).await;
    assert_eq!(client.expect("welcome").await["name"], "bob");
}

#[tokio::test]
async fn posts_need_a_bearer_token_for_their_own_user() {
    let app = secured();
    let url = app.url("/api/rooms/ops/messages");
    let body = json!({"from": "bot", "text": "deployed"});
    let post_with = |token: Option<String>| {
        let (url, body) = (url.clone(), body.clone());
        tokio::task::spawn_blocking(move || {
            let mut request = ureq::post(&url);
            if let Some(token) = token {
                request = request.set("Authorization", &format!("Bearer {token}"));
            }
            match request.send_json(body) {
                Ok(response) => response.status(),
                Err(ureq::Error::Status(status, _)) => status,
                Err(error) => panic!("{error}"),
            }
        })
    };
    assert_eq!(post_with(None).await.unwrap(), 401);
    assert_eq!(post_with(Some("garbage".into())).await.unwrap(), 401);
    assert_eq!(post_with(Some(expired_token("bot"))).await.unwrap(), 401);
    assert_eq!(post_with(Some(token_for("mallory"))).await.unwrap(), 403, "only as oneself");
    assert_eq!(post_with(Some(token_for("bot"))).await.unwrap(), 201);
}

async fn upgrade_from(app: &TestApp, origin: &str) -> Result<(), u16> {
    let mut request = app.ws_url("?name=alice").into_client_request().unwrap();
    request.headers_mut().insert("Origin", origin.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(other) => panic!("{other}"),
    }
}

#[tokio::test]
async fn browsers_of_other_origins_are_refused() {
    let app = TestApp::spawn_with(|config| {
        config.allowed_origins = vec!["https://chat.example.com".into()]
    });
    assert_eq!(upgrade_from(&app, &format!("http://{}", app.address)).await, Ok(()));
    assert_eq!(upgrade_from(&app, "https://chat.example.com").await, Ok(()));
    assert_eq!(upgrade_from(&app, "https://evil.example").await, Err(403));
    assert_eq!(upgrade_from(&app, "http://127.0.0.1:1").await, Err(403));
    assert_eq!(upgrade_from(&app, "null").await, Err(403));
}

#[tokio::test]
async fn refusals_come_in_the_contracts_order() {
    let app = TestApp::spawn_with(|config| {
        config.auth_secret = Some(Secret::new(SECRET));
        config.max_connections = Some(0);
    });
    assert_eq!(upgrade_from(&app, "https://evil.example").await, Err(403), "origin before token");
    let (status, _) = refused_upgrade(&app.ws_url("?name=bad%20name")).await;
    assert_eq!(status, 401, "token before name");
    let (status, _) = refused_upgrade(&app.ws_url(&format!("?token={}", token_for("alice")))).await;
    assert_eq!(status, 503, "capacity last");
    let open = TestApp::spawn_with(|config| config.max_connections = Some(0));
    let (status, _) = refused_upgrade(&open.ws_url("?name=bad%20name")).await;
    assert_eq!(status, 400, "name before capacity");
}

#[tokio::test]
async fn connections_beyond_the_limit_get_503_until_one_closes() {
    let app = TestApp::spawn_with(|config| config.max_connections = Some(2));
    let first = app.client("one").await;
    let _second = app.client("two").await;
    let (status, _) = refused_upgrade(&app.ws_url("?name=three")).await;
    assert_eq!(status, 503);
    first.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        match tokio_tungstenite::connect_async(app.ws_url("?name=three")).await {
            Ok(_) => break,
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            Err(error) => panic!("the slot was not given back: {error}"),
        }
    }
}

#[tokio::test]
async fn a_session_may_be_in_a_bounded_number_of_rooms() {
    let app = TestApp::spawn_with(|config| config.max_rooms_per_session = 2);
    let mut alice = app.client("alice").await;
    alice.join("one").await;
    alice.join("two").await;
    alice.join("two").await; // rejoining is not a new room
    let error = alice.error_for(json!({"type": "join", "room": "three", "ref": "j"})).await;
    assert_eq!((error["code"].as_str(), error["ref"].as_str()), (Some("bad_request"), Some("j")));
    alice.send(json!({"type": "leave", "room": "one"})).await;
    alice.expect("left").await;
    alice.join("three").await;
}
