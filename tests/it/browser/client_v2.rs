//! The web client's second round (docs: ../shared/web-client.md, "Added in
//! v2"): finding rooms, coming back, being told, reading, looking right.
//! Screenshots: `target/browser-screenshots/v2-*.png`.

use serde_json::{json, Value};

use super::{eventually, Browser, Chromedriver, ENTER};
use crate::support::{TestApp, TestClient};

const ESCAPE: &str = "\u{E00C}";
const TAB: &str = "\u{E004}";

/// Says `text` in `room` and waits for its acknowledgement, whatever
/// other frames (presence, typing) come first.
async fn say(client: &mut TestClient, room: &str, text: &str) -> u64 {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let reference = format!("say-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    client.send(json!({"type": "say", "room": room, "text": text, "ref": reference})).await;
    client.skip_to_ref(&reference).await["id"].as_u64().expect("an id")
}

/// Signs in through the link and waits until `room` is open.
async fn open_room(browser: &Browser, app: &TestApp, name: &str, room: &str) {
    browser.open(&app.url(&format!("/?name={name}&room={room}"))).await;
    let current = format!("[data-testid=room-item][data-room={room}][aria-current=true]");
    browser.wait_for(&current).await;
}

/// A server, bob in its lobby (a plain client), and alice's browser with
/// the lobby open. Fields drop in order: the browser before its driver.
struct Lobby {
    alice: Browser,
    bob: TestClient,
    app: TestApp,
    driver: Chromedriver,
}

async fn lobby() -> Lobby {
    let app = TestApp::spawn();
    let bob = app.member("bob", "lobby").await;
    let driver = Chromedriver::start().await;
    let alice = driver.browser("alice").await;
    open_room(&alice, &app, "alice", "lobby").await;
    Lobby { alice, bob, app, driver }
}

async fn title(browser: &Browser) -> String {
    browser.script("return document.title").await.as_str().unwrap_or_default().to_owned()
}

async fn wait_for_title(browser: &Browser, expected: &str) {
    let deadline = tokio::time::Instant::now() + super::WAIT;
    loop {
        let shown = title(browser).await;
        if shown == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: title {shown:?}, not {expected:?}",
            browser.name
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_newcomer_finds_rooms_in_the_directory_and_joins_one_by_click_or_keyboard() {
    let app = TestApp::spawn();
    let mut carol = app.member("carol", "garden").await;
    let _dave = app.member("dave", "kitchen").await;
    let driver = Chromedriver::start().await;
    let alice = driver.browser("alice").await;
    alice.open(&app.url("/?name=alice")).await;

    // Rooms made by others, with who is in them.
    alice.wait_for("[data-testid=directory-item][data-room=garden][data-members='1']").await;
    alice.wait_for("[data-testid=directory-item][data-room=kitchen][data-members='1']").await;
    alice.type_into("[data-testid=directory-filter]", "GAR").await;
    alice.wait_for_texts("[data-testid=directory-item] .room-name", &["# garden"]).await;
    alice.screenshot("v2-directory").await;
    // Escape clears the filter.
    alice.type_into("[data-testid=directory-filter]", ESCAPE).await;
    alice
        .wait_for_texts("[data-testid=directory-item] .room-name", &["# garden", "# kitchen"])
        .await;

    // One click joins and opens it; the others see the newcomer.
    alice.click("[data-testid=directory-item][data-room=garden]").await;
    alice.wait_for_texts("[data-testid=room-title]", &["garden"]).await;
    alice.wait_for("[data-testid=room-item][data-room=garden][aria-current=true]").await;
    let presence = carol.skip_to("presence").await;
    assert_eq!(
        (presence["name"].as_str(), presence["event"].as_str()),
        (Some("alice"), Some("join"))
    );

    // By keyboard alone: filter, Tab to the room, Enter.
    alice.type_into("[data-testid=directory-filter]", &format!("kit{TAB}")).await;
    let focused = alice.script("return document.activeElement.dataset.room").await;
    assert_eq!(focused, json!("kitchen"), "Tab goes from the filter to the first room found");
    // The list may be drawn anew meanwhile (it keeps the focus): type Enter
    // into whatever has it.
    eventually("Enter reaches the focused room", || async {
        let active = alice.client.active_element().await.expect("a focused element");
        active.send_keys(ENTER).await.is_ok()
    })
    .await;
    alice.wait_for_texts("[data-testid=room-title]", &["kitchen"]).await;
    alice.close().await;
}

#[tokio::test]
async fn a_reload_keeps_the_session_and_signing_out_forgets_it() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let alice = driver.browser("alice").await;
    alice.open(&app.url("/")).await;
    alice.type_into("[data-testid=signin-name]", &format!("alice{ENTER}")).await;
    alice.wait_for("[data-testid=connection-state][data-state=open]").await;
    for room in ["lobby", "kitchen"] {
        alice.type_into("[data-testid=room-input]", &format!("{room}{ENTER}")).await;
        alice.wait_for_texts("[data-testid=room-title]", &[room]).await;
    }

    // A message written offline waits, over a reload too, and goes once.
    alice.script("walkieDebug.offline(60000)").await;
    alice.send_message("kept over a reload").await;
    alice.wait_for("[data-testid=message][data-state=pending]").await;

    alice.reload().await;
    alice.wait_for("[data-testid=connection-state][data-state=open]").await;
    alice.wait_for_texts("[data-testid=me]", &["alice"]).await;
    // Joined again, not only listed: the member counts come from `joined`.
    alice
        .wait_for_texts("[data-testid=room-item][data-room=lobby] [data-testid=room-count]", &["1"])
        .await;
    alice.wait_for("[data-testid=room-item][data-room=kitchen][aria-current=true]").await;
    alice.wait_for("[data-testid=message][data-state=sent][data-id='1'][data-from=alice]").await;
    assert_eq!(alice.texts("[data-testid=message-text]").await, ["kept over a reload"]);
    let form = alice.find("[data-testid=signin-name]").await;
    assert!(!form.is_displayed().await.unwrap(), "still signed in after a reload");
    alice.screenshot("v2-after-reload").await;

    alice.click("[data-testid=signout]").await;
    let form = alice.find("[data-testid=signin-name]").await;
    eventually("the sign-in form is back", || async { form.is_displayed().await.unwrap() }).await;
    assert!(alice.all("[data-testid=room-item]").await.is_empty());
    assert_eq!(alice.script("return localStorage.getItem('walkie.session')").await, Value::Null);
    alice.reload().await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let form = alice.find("[data-testid=signin-name]").await;
    assert!(form.is_displayed().await.unwrap(), "signed out stays signed out");
    alice.wait_for("[data-testid=connection-state][data-state=closed]").await;

    // Someone else signs in on this browser: nothing of alice's is theirs.
    alice.type_into("[data-testid=signin-name]", &format!("bob{ENTER}")).await;
    alice.wait_for_texts("[data-testid=me]", &["bob"]).await;
    assert!(alice.all("[data-testid=room-item]").await.is_empty());
    alice.close().await;
}

#[tokio::test]
async fn a_links_room_opens_once_and_a_room_left_stays_left_after_a_reload() {
    let app = TestApp::spawn();
    let driver = Chromedriver::start().await;
    let alice = driver.browser("alice").await;
    open_room(&alice, &app, "alice", "lobby").await;
    eventually("the link's name and room are taken off the address", || async {
        alice.script("return location.search").await == json!("")
    })
    .await;
    alice.type_into("[data-testid=room-input]", &format!("kitchen{ENTER}")).await;
    alice.wait_for_texts("[data-testid=room-title]", &["kitchen"]).await;
    alice.click("[data-testid=room-item][data-room=lobby]").await;
    alice.wait_for_texts("[data-testid=room-title]", &["lobby"]).await;
    alice.click("[data-testid=room-leave]").await;
    eventually("lobby is left", || async {
        alice.all("[data-testid=room-item][data-room=lobby]").await.is_empty()
    })
    .await;
    alice.reload().await;
    alice
        .wait_for_texts(
            "[data-testid=room-item][data-room=kitchen] [data-testid=room-count]",
            &["1"],
        )
        .await;
    assert!(
        alice.all("[data-testid=room-item][data-room=lobby]").await.is_empty(),
        "left stays left"
    );
    alice.close().await;
}

#[tokio::test]
async fn unread_messages_count_in_the_title_and_a_divider_marks_the_first_after_a_reload() {
    let Lobby { driver: _driver, app: _app, mut bob, alice } = lobby().await;
    for text in ["read 1", "read 2"] {
        say(&mut bob, "lobby", text).await;
    }
    alice.wait_for("[data-testid=message][data-id='2']").await;
    alice.type_into("[data-testid=room-input]", &format!("quiet{ENTER}")).await;
    alice.wait_for_texts("[data-testid=room-title]", &["quiet"]).await;
    for text in ["new 3", "new 4", "new 5"] {
        say(&mut bob, "lobby", text).await;
    }
    wait_for_title(&alice, "(3) walkie").await;

    alice.reload().await;
    alice.wait_for("[data-testid=room-item][data-room=quiet][aria-current=true]").await;
    wait_for_title(&alice, "(3) walkie").await;
    alice.click("[data-testid=room-item][data-room=lobby]").await;
    alice.wait_for("[data-testid=unread-divider]").await;
    let after = alice
        .script(
            "const dividers = document.querySelectorAll('[data-testid=unread-divider]'); \
             return [dividers.length, dividers[0].nextElementSibling.dataset.id];",
        )
        .await;
    assert_eq!(after, json!([1, "3"]), "one divider, right before the first unread");
    wait_for_title(&alice, "walkie").await;
    alice.screenshot("v2-unread-divider").await;

    // Scrolled up while more arrive: a button jumps to the latest.
    for i in 0..40 {
        say(&mut bob, "lobby", &format!("filler {i}")).await;
    }
    alice.wait_for("[data-testid=message][data-id='45']").await;
    alice.script("document.querySelector('[data-testid=message-list]').scrollTop = 0").await;
    say(&mut bob, "lobby", "the latest").await;
    alice.wait_for("[data-testid=jump-latest]:not([hidden])").await;
    alice.click("[data-testid=jump-latest]").await;
    let at_bottom = "const list = document.querySelector('[data-testid=message-list]'); \
                     return list.scrollHeight - list.scrollTop - list.clientHeight < 40;";
    eventually("the list shows the latest", || async {
        alice.script(at_bottom).await == json!(true)
    })
    .await;
    alice.wait_for("[data-testid=jump-latest][hidden]").await;
    alice.close().await;
}

#[tokio::test]
async fn with_the_tab_hidden_a_mention_or_a_direct_message_raises_a_notification() {
    let Lobby { driver, app, mut bob, alice } = lobby().await;

    // Permission is asked on a click, never on load.
    let carol = driver.browser("carol").await;
    let count_asks =
        "window.asked = 0; const ask = Notification.requestPermission.bind(Notification); \
                      Notification.requestPermission = () => { window.asked += 1; return ask(); };";
    let on_load =
        json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": count_asks}});
    carol.command("goog/cdp/execute", on_load).await;
    open_room(&carol, &app, "carol", "lobby").await;
    assert_eq!(carol.script("return window.asked").await, json!(0));
    carol.click("[data-testid=notify-enable]").await;
    eventually("carol's click asks", || async {
        carol.script("return window.asked").await == json!(1)
    })
    .await;
    carol.close().await;

    alice.grant_notifications().await;
    // The page draws again when it comes back into view.
    alice.script("document.dispatchEvent(new Event('visibilitychange'))").await;
    alice.wait_for("[data-testid=notify-enable][hidden]").await;
    alice
        .script(
            "window.notified = []; const Real = window.Notification; \
             window.Notification = class extends Real { \
               constructor(title, options) { super(title, options); window.notified.push([title, options.body]); } \
             };",
        )
        .await;
    // Seen at once, the tab visible: no notification.
    say(&mut bob, "lobby", "@alice while you look").await;
    alice.wait_for("[data-testid=message][data-id='1']").await;
    alice
        .script(
            "Object.defineProperty(document, 'hidden', { configurable: true, get: () => true }); \
             Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' }); \
             document.dispatchEvent(new Event('visibilitychange'));",
        )
        .await;
    say(&mut bob, "lobby", "nothing for alice").await;
    say(&mut bob, "lobby", "hey @alice, look").await;
    bob.send(json!({"type": "direct", "to": "alice", "text": "psst", "ref": "dm"})).await;
    bob.skip_to_ref("dm").await;
    let sorted = "return window.notified.map((n) => n.join(': ')).sort()";
    let expected = json!(["bob in #lobby: hey @alice, look", "bob: psst"]);
    eventually("alice is notified of the mention and the direct message only", || async {
        alice.script(sorted).await == expected
    })
    .await;
    alice.close().await;
}

#[tokio::test]
async fn links_are_clickable_nothing_else_is_markup_and_days_and_senders_are_grouped() {
    let Lobby { driver: _driver, app: _app, mut bob, alice } = lobby().await;
    let hostile = "see https://example.com/a_(b). and <a href=javascript:alert(1)>x</a>\nline two";
    say(&mut bob, "lobby", hostile).await;
    say(&mut bob, "lobby", "javascript:alert(2) and ftp://example.com stay text").await;
    alice.wait_for("[data-testid=message][data-id='2']").await;

    let links = alice
        .script(
            "return [...document.querySelectorAll('[data-testid=message-text] a')].map((a) => \
             [a.dataset.testid, a.getAttribute('href'), a.rel, a.target, a.textContent]);",
        )
        .await;
    let expected = json!([[
        "message-link",
        "https://example.com/a_(b)",
        "noopener noreferrer",
        "_blank",
        "https://example.com/a_(b)"
    ]]);
    assert_eq!(links, expected, "one link, and only the http(s) URL");
    let texts = alice.texts("[data-testid=message-text]").await;
    assert!(texts[0].contains("<a href=javascript:alert(1)>x</a>"), "{texts:?}");
    let first = alice
        .script("return document.querySelector('[data-testid=message-text]').textContent")
        .await;
    assert!(
        first.as_str().is_some_and(|text| text.ends_with("\nline two")),
        "multi-line kept: {first}"
    );

    // Both messages are today's, from one sender: one day line, one group.
    alice.wait_for_texts("[data-testid=day-separator]", &["Today"]).await;
    let grouped = alice.script("return document.querySelector('[data-testid=message][data-id=\"2\"]').classList.contains('grouped')").await;
    assert_eq!(grouped, json!(true));
    let labels = alice
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1]; \
             import('/text.js').then((text) => done([ \
               text.dayLabel(new Date(2026, 10, 30, 23), new Date(2026, 11, 1, 9)), \
               text.dayLabel(new Date(2026, 11, 1, 0, 5), new Date(2026, 11, 1, 23)), \
               text.dayLabel(new Date(2025, 0, 5), new Date(2026, 11, 1)).includes('2025')]));",
            vec![],
        )
        .await
        .expect("the module loads");
    assert_eq!(labels, json!(["Yesterday", "Today", true]));

    // Offline: the banner says it reconnects and what waits.
    alice.script("walkieDebug.offline(60000)").await;
    alice.send_message("written offline").await;
    alice.wait_for("[data-testid=offline-banner]:not([hidden])").await;
    let banner = alice.texts("[data-testid=offline-banner]").await.concat();
    assert!(banner.contains("reconnecting") && banner.contains("1 message waits"), "{banner}");
    alice.screenshot("v2-offline").await;
    alice.script("walkieDebug.online()").await;
    alice.wait_for("[data-testid=offline-banner][hidden]").await;
    alice.wait_for("[data-testid=message][data-id='3'][data-from=alice]").await;
    alice.close().await;
}

/// The WCAG contrast ratio of each `selector`'s first element's text
/// against the background it sits on.
const CONTRASTS: &str = "
  const channels = (color) => color.match(/[\\d.]+/g).map(Number);
  const luminance = ([r, g, b]) => {
    const linear = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const background = (element) => {
    for (; element; element = element.parentElement) {
      const color = channels(getComputedStyle(element).backgroundColor);
      if (color.length < 4 || color[3] > 0) return color;
    }
    return [255, 255, 255];
  };
  return arguments[0].map((selector) => {
    const element = document.querySelector(selector);
    if (!element) return [selector, null];
    const [a, b] = [luminance(channels(getComputedStyle(element).color)), luminance(background(element))];
    return [selector, Math.round((Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05) * 10) / 10];
  });";

#[tokio::test]
async fn light_and_dark_themes_are_readable_on_desktops_and_phones() {
    let Lobby { driver: _driver, app, mut bob, alice } = lobby().await;
    say(&mut bob, "lobby", "hello, see https://example.com").await;
    say(&mut bob, "lobby", "@alice are you there?").await;
    let mut other = app.member("bob", "garden").await;
    say(&mut other, "garden", "over here").await;
    alice.wait_for("[data-testid=message][data-id='2']").await;
    // Opening the directory (focusing its filter) asks for the rooms again.
    alice.click("[data-testid=directory-filter]").await;
    alice.wait_for("[data-testid=directory-item][data-room=garden]").await;

    let selectors = json!([
        "body",
        "[data-testid=message-text]",
        "[data-testid=message-time]",
        "[data-testid=message-link]",
        "[data-testid=message][data-mention=true] [data-testid=message-text]",
        "[data-testid=directory-item] .count",
        "[data-testid=room-title]",
        "[data-testid=connection-state]",
        "[data-testid=composer]",
    ]);
    let mut backgrounds = Vec::new();
    for scheme in ["light", "dark"] {
        alice.color_scheme(scheme).await;
        for (label, width, height) in [("desktop", 1100, 800), ("phone", 390, 844)] {
            alice.viewport(width, height).await;
            assert_eq!(alice.script("return innerWidth").await, json!(width));
            alice.screenshot(&format!("v2-{label}-{scheme}")).await;
            let ratios = alice.client.execute(CONTRASTS, vec![selectors.clone()]).await.unwrap();
            for pair in ratios.as_array().unwrap() {
                let ratio = pair[1].as_f64();
                assert!(
                    ratio.is_none_or(|ratio| ratio >= 4.5),
                    "{scheme} {label}: {pair} below AA (4.5)"
                );
            }
            let fits =
                alice.script("return document.documentElement.scrollWidth <= innerWidth").await;
            assert_eq!(fits, json!(true), "{scheme} {label}: nothing wider than the screen");
        }
        backgrounds
            .push(alice.script("return getComputedStyle(document.body).backgroundColor").await);
    }
    assert_ne!(backgrounds[0], backgrounds[1], "the dark theme follows the system setting");
    alice.close().await;
}

#[tokio::test]
async fn a_divider_further_back_than_the_latest_page_is_reached_by_loading_older_ones() {
    let Lobby { driver: _driver, app: _app, mut bob, alice } = lobby().await;
    say(&mut bob, "lobby", "read").await;
    alice.wait_for("[data-testid=message][data-id='1']").await;
    alice.type_into("[data-testid=room-input]", &format!("quiet{ENTER}")).await;
    alice.wait_for_texts("[data-testid=room-title]", &["quiet"]).await;
    for i in 0..120 {
        say(&mut bob, "lobby", &format!("unread {i}")).await;
    }
    alice.reload().await;
    alice.wait_for("[data-testid=room-item][data-room=quiet][aria-current=true]").await;
    wait_for_title(&alice, "(120) walkie").await;
    alice.click("[data-testid=room-item][data-room=lobby]").await;
    let first_unread = "const divider = document.querySelector('[data-testid=unread-divider]'); \
                        return divider && divider.nextElementSibling.dataset.id;";
    eventually("the divider sits before message 2", || async {
        alice.script(first_unread).await == json!("2")
    })
    .await;
    alice.close().await;
}
