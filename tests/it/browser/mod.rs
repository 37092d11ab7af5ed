//! The web client in a real browser: headless Chromium driven through
//! chromedriver (WebDriver). Screenshots land in `target/browser-screenshots`.
//!
//! These tests need `chromium` and `chromium-driver` (Debian packages);
//! `scripts/test` installs them. Without them the tests fail: they never
//! skip. This file holds the harness and the first client's tests;
//! `client_v2.rs` the directory, coming back, being told, reading and
//! looking right.

mod client_v2;

use std::future::Future;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{post, TestApp, TestClient};

const WAIT: Duration = Duration::from_secs(15);

/// A chromedriver process on a free port, killed when dropped.
struct Chromedriver {
    child: Child,
    port: u16,
    profiles: tempfile::TempDir,
}

impl Chromedriver {
    async fn start() -> Self {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|path| std::path::Path::new(path).exists())
            .expect("chromedriver is not installed: run scripts/test, which installs chromium and chromium-driver");
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // Its own process group, so that dropping it also ends the browsers
        // it started, even when a test fails before closing them.
        let child = Command::new(binary)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Self { child, port, profiles: tempfile::TempDir::new().unwrap() };
        eventually("chromedriver listens", || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        driver
    }

    /// A new headless browser window.
    async fn browser(&self, name: &str) -> Browser {
        let profile = self.profiles.path().join(name);
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1100,800",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a browser session");
        Browser { client, name: name.to_owned() }
    }
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds, or fails the test after `WAIT`.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One person's browser window.
struct Browser {
    client: Client,
    name: String,
}

impl Browser {
    async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("the page loads");
    }

    async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("{}: no element {css}: {error}", self.name))
    }

    async fn all(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap_or_default()
    }

    async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.all(css).await {
            texts.push(element.text().await.unwrap_or_default());
        }
        texts
    }

    /// Clicks the element matching `css`, finding it again if the page
    /// re-rendered it between finding and clicking.
    async fn click(&self, css: &str) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match self.find(css).await.click().await {
                Ok(_) => return,
                Err(error) if tokio::time::Instant::now() < deadline => {
                    let _ = error; // stale: the list was drawn anew; find it again
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(error) => panic!("{}: cannot click {css}: {error}", self.name),
            }
        }
    }

    async fn type_into(&self, css: &str, text: &str) {
        self.find(css).await.send_keys(text).await.expect("typing works");
    }

    /// Waits until the element matching `css` exists.
    async fn wait_for(&self, css: &str) {
        self.find(css).await;
    }

    /// Waits until the elements matching `css` have these texts.
    async fn wait_for_texts(&self, css: &str, expected: &[&str]) {
        let what = format!("{}: {css} reads {expected:?}", self.name);
        eventually(&what, || async { self.texts(css).await == expected }).await;
    }

    async fn script(&self, code: &str) -> serde_json::Value {
        self.client.execute(code, vec![]).await.expect("the script runs")
    }

    async fn screenshot(&self, label: &str) {
        let directory =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
        std::fs::create_dir_all(&directory).unwrap();
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(directory.join(format!("{label}-{}.png", self.name)), png).unwrap();
    }

    /// The open conversation's messages as the user sees them, top to
    /// bottom: each one's `data-id` and text.
    async fn shown(&self) -> Vec<(String, String)> {
        let messages = self
            .script(
                "return [...document.querySelectorAll( \
                 '[data-testid=message-list] [data-testid=message]')].map((message) => \
                 [message.dataset.id, message.querySelector('[data-testid=message-text]').textContent]);",
            )
            .await;
        serde_json::from_value(messages).expect("a list of [id, text] pairs")
    }

    /// Waits until the open conversation shows exactly `expected`.
    async fn wait_for_messages(&self, expected: &[(String, String)]) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let shown = self.shown().await;
            if shown == expected {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                let ids: Vec<&str> = shown.iter().map(|(id, _)| id.as_str()).collect();
                panic!(
                    "{}: expected messages 1 to {}, each once and in order; {} show, ids {ids:?}",
                    self.name,
                    expected.len(),
                    shown.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// From now on, on every connection the page opens, `history` frames
    /// wait until `release_history` while all others pass: a catch-up
    /// page stays on its way for as long as the test likes.
    async fn hold_history(&self) {
        self.script(
            "window.heldPages = []; \
             window.WebSocket = class extends window.WebSocket { \
               get onmessage() { return super.onmessage; } \
               set onmessage(handler) { \
                 super.onmessage = (event) => { \
                   const held = window.heldPages && JSON.parse(event.data).type === 'history'; \
                   if (held) window.heldPages.push(() => handler(event)); else handler(event); \
                 }; \
               } \
             };",
        )
        .await;
    }

    /// Waits until a `history` frame is held.
    async fn wait_for_held_history(&self) {
        let what = format!("{}: a history page is on its way", self.name);
        eventually(&what, || async {
            self.script("return window.heldPages.length > 0").await == json!(true)
        })
        .await;
    }

    /// Hands the held `history` frames to the page and holds no more.
    async fn release_history(&self) {
        self.script(
            "const held = window.heldPages; window.heldPages = null; \
             held.forEach((deliver) => deliver());",
        )
        .await;
    }

    /// Waits until the open conversation ends with messages `last` (ids)
    /// and shows every id once, in increasing order.
    async fn wait_for_last_ids(&self, last: &[u64]) {
        let what = format!("{}: the list ends with ids {last:?}, in order", self.name);
        eventually(&what, || async {
            let ids: Vec<u64> =
                self.shown().await.iter().filter_map(|(id, _)| id.parse().ok()).collect();
            ids.ends_with(last) && ids.windows(2).all(|pair| pair[0] < pair[1])
        })
        .await;
    }

    async fn send_message(&self, text: &str) {
        self.type_into("[data-testid=composer]", &format!("{text}\n")).await;
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }

    /// Reloads the page, as the user's F5 does.
    async fn reload(&self) {
        self.client.refresh().await.expect("the page reloads");
    }

    /// Sends a WebDriver command fantoccini has no method for: `POST
    /// /session/{id}/{path}` with `body`.
    async fn command(&self, path: &str, body: serde_json::Value) {
        let command = SessionPost { path: path.to_owned(), body };
        self.client.issue_cmd(command).await.unwrap_or_else(|error| panic!("{path}: {error}"));
    }

    /// Lets the page show desktop notifications (the user's "Allow").
    async fn grant_notifications(&self) {
        let permission = json!({"descriptor": {"name": "notifications"}, "state": "granted"});
        self.command("permissions", permission).await;
    }

    /// Makes `prefers-color-scheme` say `scheme` ("light" or "dark").
    async fn color_scheme(&self, scheme: &str) {
        let features = json!([{"name": "prefers-color-scheme", "value": scheme}]);
        let command =
            json!({"cmd": "Emulation.setEmulatedMedia", "params": {"features": features}});
        self.command("goog/cdp/execute", command).await;
    }

    /// Makes the page's viewport `width` × `height` CSS pixels (a phone:
    /// 390 × 844), as DevTools' device mode does.
    async fn viewport(&self, width: u32, height: u32) {
        let metrics = json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 700});
        let command = json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": metrics});
        self.command("goog/cdp/execute", command).await;
    }
}

/// A WebDriver `POST` under the session (see [`Browser::command`]).
#[derive(Debug)]
struct SessionPost {
    path: String,
    body: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for SessionPost {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/{}", session.unwrap_or_default(), self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(self.body.to_string()))
    }
}

const ENTER: &str = "\u{E007}";

#[tokio::test]
async fn two_people_chat_in_the_browser() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let alice = driver.browser("alice").await;
    let bob = driver.browser("bob").await;

    // alice comes in through a link; bob signs in with the form.
    alice.open(&app.url("/?name=alice&room=lobby")).await;
    alice.wait_for("[data-testid=connection-state][data-state=open]").await;
    alice.wait_for_texts("[data-testid=me]", &["alice"]).await;
    alice.wait_for("[data-testid=room-item][data-room=lobby][aria-current=true]").await;
    bob.open(&app.url("/")).await;
    bob.type_into("[data-testid=signin-name]", &format!("bob{ENTER}")).await;
    bob.wait_for("[data-testid=connection-state][data-state=open]").await;
    bob.type_into("[data-testid=room-input]", &format!("lobby{ENTER}")).await;
    bob.wait_for_texts("[data-testid=room-title]", &["lobby"]).await;
    let form = bob.find("[data-testid=signin-name]").await;
    assert!(!form.is_displayed().await.unwrap(), "the sign-in form is gone once signed in");

    // Presence and typing.
    alice.wait_for("[data-testid=member][data-name=bob]").await;
    alice
        .wait_for_texts("[data-testid=room-item][data-room=lobby] [data-testid=room-count]", &["2"])
        .await;
    bob.type_into("[data-testid=composer]", "hel").await;
    eventually("alice sees bob typing", || async {
        alice.texts("[data-testid=typing-indicator]").await.concat().contains("bob")
    })
    .await;

    // Messages, acknowledged, in both windows.
    bob.send_message("lo alice").await;
    bob.wait_for("[data-testid=message][data-state=sent][data-id='1'][data-from=bob]").await;
    alice
        .wait_for_texts("[data-testid=message] [data-testid=message-text]", &["hello alice"])
        .await;
    let hostile = "<script>window.pwned = 1</script><b>bold?</b>";
    alice.send_message(hostile).await;
    bob.wait_for_texts("[data-testid=message-text]", &["hello alice", hostile]).await;
    assert_eq!(bob.script("return window.pwned === undefined").await, json!(true));
    assert!(bob
        .all("[data-testid=message-text] b, [data-testid=message-text] script")
        .await
        .is_empty());
    let time = bob.find("[data-testid=message-time]").await;
    assert!(time.attr("datetime").await.unwrap().is_some_and(|ts| ts.ends_with('Z')));
    alice.screenshot("1-lobby").await;
    bob.screenshot("1-lobby").await;

    // A direct conversation, opened from the member list.
    alice.click("[data-testid=member][data-name=bob]").await;
    alice.wait_for("[data-testid=room-item][data-room='@alice+bob'][aria-current=true]").await;
    alice.wait_for_texts("[data-testid=room-title]", &["bob"]).await;
    alice.send_message("psst, bob").await;
    bob.wait_for_texts(
        "[data-testid=room-item][data-room='@alice+bob'] [data-testid=unread-badge]",
        &["1"],
    )
    .await;
    bob.click("[data-testid=room-item][data-room='@alice+bob']").await;
    bob.wait_for_texts("[data-testid=message-text]", &["psst, bob"]).await;
    bob.screenshot("2-direct").await;

    // bob's network drops; what alice says meanwhile reaches him once.
    bob.click("[data-testid=room-item][data-room=lobby]").await;
    bob.script("window.walkieDebug.socket.close()").await;
    alice.click("[data-testid=room-item][data-room=lobby]").await;
    alice.send_message("while you were away").await;
    alice.send_message("and one more").await;
    bob.wait_for("[data-testid=connection-state][data-state=open]").await;
    bob.wait_for_texts(
        "[data-testid=message-text]",
        &["hello alice", hostile, "while you were away", "and one more"],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bob.all("[data-testid=message]").await.len(), 4, "each message exactly once");
    bob.screenshot("3-back-online").await;

    // A message the server refuses shows as failed, with a retry.
    alice.send_message(&"x".repeat(4001)).await;
    alice.wait_for("[data-testid=message][data-state=failed] [data-testid=message-retry]").await;
    alice.screenshot("4-failed").await;

    alice.close().await;
    bob.close().await;
}

#[tokio::test]
async fn a_refused_sign_in_says_why() {
    let app = TestApp::spawn_with(|config| config.max_connections = Some(0));
    let driver = Chromedriver::start().await;
    let carol = driver.browser("carol").await;
    carol.open(&app.url("/")).await;
    carol.type_into("[data-testid=signin-name]", &format!("carol{ENTER}")).await;
    eventually("the refusal is shown", || async {
        let error = carol.find("[data-testid=signin-error]").await;
        error.is_displayed().await.unwrap_or(false)
            && error.text().await.unwrap_or_default().contains("503")
    })
    .await;
    carol.screenshot("5-refused").await;
    carol.close().await;
}

#[tokio::test]
async fn older_history_loads_on_scrolling_up_and_mentions_stand_out() {
    let app = TestApp::spawn();
    let url = app.url("/api/rooms/lobby/messages");
    for i in 1..=70 {
        let text = if i == 70 { "@dana look at this".to_owned() } else { format!("old {i}") };
        assert_eq!(post(url.clone(), json!({"from": "bot", "text": text})).await.status, 201);
    }
    let driver = Chromedriver::start().await;
    let dana = driver.browser("dana").await;
    dana.open(&app.url("/?name=dana&room=lobby")).await;
    eventually("the latest 50 messages show", || async {
        dana.all("[data-testid=message]").await.len() == 50
    })
    .await;
    dana.wait_for("[data-testid=message][data-id='70'][data-mention=true]").await;
    dana.script(
        "const list = document.querySelector('[data-testid=message-list]'); \
         list.scrollTop = 0; list.dispatchEvent(new Event('scroll'));",
    )
    .await;
    eventually("older messages load", || async {
        dana.all("[data-testid=message]").await.len() == 70
    })
    .await;
    let first = dana.find("[data-testid=message] [data-testid=message-text]").await;
    assert_eq!(first.text().await.unwrap(), "old 1");

    // A mention in a room that is not open is counted on its room item.
    dana.type_into("[data-testid=room-input]", &format!("other{ENTER}")).await;
    dana.wait_for("[data-testid=room-item][data-room=other][aria-current=true]").await;
    assert_eq!(post(url.clone(), json!({"from": "bot", "text": "@dana, again"})).await.status, 201);
    dana.wait_for_texts("[data-room=lobby] [data-testid=mention-badge]", &["1"]).await;
    dana.wait_for_texts("[data-room=lobby] [data-testid=unread-badge]", &["1"]).await;
    dana.click("[data-testid=room-item][data-room=lobby]").await;
    eventually("badges clear when the room is read", || async {
        dana.all("[data-room=lobby] [data-testid=mention-badge]").await.is_empty()
    })
    .await;

    // The same page on a phone-sized screen.
    dana.client.set_window_size(390, 844).await.unwrap();
    dana.screenshot("6-phone").await;
    dana.close().await;
}

#[tokio::test]
async fn a_message_typed_offline_is_sent_once_back_online_and_reading_clears_every_tab() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let bob = driver.browser("bob").await;
    let alice = driver.browser("alice").await;
    let alice_tab = driver.browser("alice-tab2").await;
    bob.open(&app.url("/?name=bob&room=lobby")).await;
    // Both of alice's tabs are in lobby but looking at another room.
    for tab in [&alice, &alice_tab] {
        tab.open(&app.url("/?name=alice&room=lobby")).await;
        tab.wait_for("[data-testid=room-item][data-room=lobby][aria-current=true]").await;
        tab.type_into("[data-testid=room-input]", &format!("other{ENTER}")).await;
        tab.wait_for("[data-testid=room-item][data-room=other][aria-current=true]").await;
    }
    bob.wait_for("[data-testid=member][data-name=alice]").await;

    // bob loses the network and writes anyway: the message waits as pending.
    bob.script("window.walkieDebug.offline(1500)").await;
    bob.wait_for("[data-testid=connection-state][data-state=closed]").await;
    bob.send_message("written in a tunnel").await;
    bob.wait_for("[data-testid=message][data-state=pending]").await;
    bob.screenshot("7-pending").await;
    bob.wait_for("[data-testid=connection-state][data-state=open]").await;
    bob.wait_for("[data-testid=message][data-state=sent][data-id='1']").await;

    // Both tabs count it unread; reading it in one clears the other.
    for tab in [&alice, &alice_tab] {
        tab.wait_for_texts("[data-room=lobby] [data-testid=unread-badge]", &["1"]).await;
    }
    alice.click("[data-testid=room-item][data-room=lobby]").await;
    alice.wait_for_texts("[data-testid=message-text]", &["written in a tunnel"]).await;
    eventually("the second tab's badge clears", || async {
        alice_tab.all("[data-room=lobby] [data-testid=unread-badge]").await.is_empty()
    })
    .await;
    alice_tab.screenshot("8-read-elsewhere").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(bob.all("[data-testid=message]").await.len(), 1, "exactly once for the sender");
    assert_eq!(alice.all("[data-testid=message]").await.len(), 1, "exactly once for the reader");
    for browser in [bob, alice, alice_tab] {
        browser.close().await;
    }
}

/// Sends every frame at once, each with a `ref`, then reads until each has
/// its acknowledgement: hundreds of messages land in a moment.
async fn send_all(client: &mut TestClient, frames: Vec<serde_json::Value>) {
    let count = frames.len();
    for (index, mut frame) in frames.into_iter().enumerate() {
        frame["ref"] = json!(format!("bulk-{index}"));
        client.send(frame).await;
    }
    let mut acknowledged = 0;
    while acknowledged < count {
        let frame = client.recv().await;
        assert_ne!(frame["type"], "error", "a message was refused: {frame}");
        let bulk = frame["ref"].as_str().is_some_and(|reference| reference.starts_with("bulk-"));
        if frame["type"] == "message" && bulk {
            acknowledged += 1;
        }
    }
}

fn says(room: &str, texts: &[String]) -> Vec<serde_json::Value> {
    texts.iter().map(|text| json!({"type": "say", "room": room, "text": text})).collect()
}

fn directs(to: &str, texts: &[String]) -> Vec<serde_json::Value> {
    texts.iter().map(|text| json!({"type": "direct", "to": to, "text": text})).collect()
}

/// What a list shows when `texts` are a conversation's messages 1, 2, 3...
fn numbered(texts: &[String]) -> Vec<(String, String)> {
    texts.iter().enumerate().map(|(index, text)| ((index + 1).to_string(), text.clone())).collect()
}

/// Takes the tab offline until `meanwhile` has run, then online again.
/// The texts of the absence tests: 3 before, 210 while away (more than
/// `joined` or any page holds), 12 while the first catch-up page is held.
fn absence_texts(word: &str) -> Vec<String> {
    (1..=225).map(|i| format!("{word} {i}")).collect()
}

/// `tab` shows the first 3 of `texts`; takes it offline while `sender`
/// sends the next 210 (as `frames` makes them), brings it back, and
/// checks that every message then shows once, in order, with the last 12
/// sent live while the tab's first catch-up page is still on its way.
async fn catches_up_after_an_absence(
    tab: &Browser,
    sender: &mut TestClient,
    texts: &[String],
    frames: impl Fn(&[String]) -> Vec<serde_json::Value>,
    screenshot: &str,
) {
    tab.wait_for_messages(&numbered(&texts[..3])).await;
    tab.hold_history().await;
    tab.script("window.walkieDebug.offline(600000)").await;
    tab.wait_for("[data-testid=connection-state][data-state=closed]").await;
    send_all(sender, frames(&texts[3..213])).await;
    tab.script("window.walkieDebug.online()").await;
    tab.wait_for("[data-testid=connection-state][data-state=open]").await;
    // Back, the tab pages on; while that page is on its way, new messages
    // arrive live and show at once.
    tab.wait_for_held_history().await;
    send_all(sender, frames(&texts[213..])).await;
    tab.wait_for_last_ids(&(214..=225).collect::<Vec<_>>()).await;
    tab.release_history().await;
    tab.wait_for_messages(&numbered(texts)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(tab.shown().await, numbered(texts), "each message shows once, in order");
    tab.screenshot(screenshot).await;
}

#[tokio::test]
async fn a_tab_offline_while_hundreds_of_messages_land_shows_each_once_when_back() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let erin = driver.browser("erin").await;
    let mut bot = app.member("bot", "lobby").await;
    let texts = absence_texts("news");
    send_all(&mut bot, says("lobby", &texts[..3])).await;
    erin.open(&app.url("/?name=erin&room=lobby")).await;
    let in_lobby = |texts: &[String]| says("lobby", texts);
    catches_up_after_an_absence(&erin, &mut bot, &texts, in_lobby, "9-room-caught-up").await;
    erin.close().await;
}

#[tokio::test]
async fn a_direct_conversation_catches_up_after_a_long_absence() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let gwen = driver.browser("gwen").await;
    let mut hal = app.client("hal").await;
    let texts = absence_texts("note");
    send_all(&mut hal, directs("gwen", &texts[..3])).await;
    gwen.open(&app.url("/?name=gwen")).await;
    gwen.click("[data-testid=room-item][data-room='@gwen+hal']").await;
    let to_gwen = |texts: &[String]| directs("gwen", texts);
    catches_up_after_an_absence(&gwen, &mut hal, &texts, to_gwen, "10-direct-caught-up").await;
    gwen.close().await;
}

#[tokio::test]
async fn a_jump_in_live_ids_fetches_the_messages_missed() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let ivy = driver.browser("ivy").await;
    let mut bot = app.member("bot", "lobby").await;
    let texts: Vec<String> = (1..=8).map(|i| format!("tick {i}")).collect();
    send_all(&mut bot, says("lobby", &texts[..2])).await;
    ivy.open(&app.url("/?name=ivy&room=lobby")).await;
    ivy.wait_for_messages(&numbered(&texts[..2])).await;

    // The next three message frames are lost on the way; the fourth's id
    // jumps, and the tab fetches what it missed.
    ivy.script(
        "const socket = window.walkieDebug.socket; const deliver = socket.onmessage; \
         let lost = 3; \
         socket.onmessage = (event) => { \
           if (lost > 0 && JSON.parse(event.data).type === 'message') { lost -= 1; return; } \
           deliver(event); \
         };",
    )
    .await;
    send_all(&mut bot, says("lobby", &texts[2..])).await;
    ivy.wait_for_messages(&numbered(&texts)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ivy.shown().await, numbered(&texts), "each message shows once, in order");
    ivy.screenshot("11-gap-filled").await;
    ivy.close().await;
}
