//! Test harness: a real server on `127.0.0.1:0` with a database of its own
//! (a temp file, or a fresh Postgres database: see `databases`), and real
//! WebSocket and HTTP clients that read as the browser sees it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use walkie::{Application, Config};

pub use crate::databases::TestDb;

/// How long a client waits for an expected frame before failing the test.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A running walkie server, stopped gracefully when dropped or `stop`ped.
pub struct TestApp {
    pub address: SocketAddr,
    pub db: Arc<TestDb>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl TestApp {
    /// A server with default settings and a fresh database.
    pub fn spawn() -> Self {
        Self::spawn_with(|_| {})
    }

    /// A server with a fresh database and settings changed by `tweak`.
    pub fn spawn_with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::spawn_on(TestDb::new(), tweak)
    }

    /// A server on `db` (to restart on the same database).
    pub fn spawn_on(db: Arc<TestDb>, tweak: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config {
            bind: "127.0.0.1:0".into(),
            workers: Some(1),
            // Flood control out of the way; its own tests set it.
            rate: 100_000.0,
            burst: 100_000,
            ..Config::with_database(db.url.clone())
        };
        tweak(&mut config);
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let application = Application::build(config).await.expect("the server starts");
                address_tx.send(application.address()).expect("the test waits for the address");
                application
                    .run_until_stopped(async move {
                        let _ = stop_rx.await;
                    })
                    .await
            })
        });
        let address = address_rx.recv_timeout(TIMEOUT).expect("the server reports its address");
        Self { address, db, stop: Some(stop_tx), thread: Some(thread) }
    }

    /// Shuts the server down gracefully and waits until it has stopped.
    pub async fn stop(mut self) {
        self.begin_stop();
        let thread = self.thread.take().expect("not stopped twice");
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .expect("joining the server thread")
            .expect("the server thread did not panic")
            .expect("the server stopped cleanly");
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{query}", self.address)
    }

    /// The `--database-url` of its store.
    pub fn database(&self) -> &str {
        &self.db.url
    }

    /// A connected client named `name`, its `welcome` already read.
    pub async fn client(&self, name: &str) -> TestClient {
        let mut client = TestClient::connect(&self.ws_url(&format!("?name={name}"))).await;
        let welcome = client.expect("welcome").await;
        assert_eq!(welcome["name"], name);
        client.session = welcome["session"].as_str().unwrap_or_default().to_owned();
        client
    }

    /// A client named `name` that has joined `room` (the `joined` read).
    pub async fn member(&self, name: &str, room: &str) -> TestClient {
        let mut client = self.client(name).await;
        client.join(room).await;
        client
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.begin_stop();
    }
}

/// What [`TestClient::next`] found.
#[derive(Debug)]
pub enum Next {
    /// A text frame, as JSON.
    Frame(Value),
    /// The server closed the connection (with this code, if it sent one),
    /// or the connection dropped.
    Closed(Option<CloseCode>),
    /// Nothing within the wait.
    Silence,
}

/// A real WebSocket client. Every read goes through [`TestClient::next`],
/// with a timeout; tungstenite answers pings as frames are read.
pub struct TestClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub session: String,
}

impl TestClient {
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = tokio::time::timeout(TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("the upgrade in time")
            .expect("the upgrade succeeds");
        Self { socket, session: String::new() }
    }

    /// Connects over a socket whose receive buffer is `bytes` (which also
    /// stops the kernel from growing it).
    pub async fn connect_with_receive_buffer(url: &str, bytes: u32) -> Self {
        let address: SocketAddr = url
            .trim_start_matches("ws://")
            .split('/')
            .next()
            .and_then(|host| host.parse().ok())
            .expect("a ws://IP:PORT/ URL");
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        let stream = socket.connect(address).await.expect("the TCP connection");
        let (socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .expect("the upgrade succeeds");
        Self { socket, session: String::new() }
    }

    pub async fn send(&mut self, frame: Value) {
        self.send_raw(Message::text(frame.to_string())).await;
    }

    /// Sends, ignoring a connection that is gone (for crash tests).
    pub async fn send_lossy(&mut self, frame: Value) {
        let _ = self.socket.send(Message::text(frame.to_string())).await;
    }

    pub async fn send_raw(&mut self, message: Message) {
        self.socket.send(message).await.expect("the frame is sent");
    }

    /// The one way to wait for the server: the next text frame, the close,
    /// or silence once `wait` has passed. Pings and pongs never count and
    /// never extend the wait. The helpers below are this with a purpose.
    pub async fn next(&mut self, wait: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::Silence,
                Ok(Some(Ok(Message::Text(text)))) => {
                    return Next::Frame(serde_json::from_str(&text).expect("JSON frames"))
                }
                Ok(Some(Ok(Message::Close(frame)))) => {
                    return Next::Closed(frame.map(|frame| frame.code))
                }
                Ok(Some(Ok(Message::Binary(_)))) => panic!("the server sends text frames only"),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return Next::Closed(None),
            }
        }
    }

    /// The next text frame, within [`TIMEOUT`].
    pub async fn recv(&mut self) -> Value {
        match self.next(TIMEOUT).await {
            Next::Frame(frame) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    /// The next frame, which must be of type `kind`.
    pub async fn expect(&mut self, kind: &str) -> Value {
        let frame = self.recv().await;
        assert_eq!(frame["type"], kind, "unexpected frame {frame}");
        frame
    }

    /// Skips frames until one of type `kind`, within [`TIMEOUT`] in all.
    pub async fn skip_to(&mut self, kind: &str) -> Value {
        self.skip_until(|frame| frame["type"] == kind).await
    }

    /// Skips frames until one whose `ref` is `reference`.
    pub async fn skip_to_ref(&mut self, reference: &str) -> Value {
        self.skip_until(|frame| frame["ref"] == reference).await
    }

    async fn skip_until(&mut self, wanted: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next(left).await {
                Next::Frame(frame) if wanted(&frame) => return frame,
                Next::Frame(_) => continue,
                other => panic!("no such frame in time: {other:?}"),
            }
        }
    }

    /// Asserts that nothing arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        match self.next(wait).await {
            Next::Silence => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    /// Sends `frame` and returns the `error` it causes.
    pub async fn error_for(&mut self, frame: Value) -> Value {
        self.send(frame).await;
        self.expect("error").await
    }

    pub async fn join(&mut self, room: &str) -> Value {
        self.send(json!({"type": "join", "room": room})).await;
        let joined = self.expect("joined").await;
        assert_eq!(joined["room"], room);
        joined
    }

    /// Says `text` in `room` (no `ref`) and returns the acknowledgement:
    /// the sender's own copy, the next frame.
    pub async fn say(&mut self, room: &str, text: &str) -> Value {
        self.send(json!({"type": "say", "room": room, "text": text})).await;
        let ack = self.expect("message").await;
        assert_eq!((ack["room"].as_str(), ack["text"].as_str()), (Some(room), Some(text)));
        ack
    }

    /// Reads (and drops) frames until the server closes, within
    /// [`TIMEOUT`]; returns the close code.
    pub async fn close_code(&mut self) -> Option<CloseCode> {
        loop {
            match self.next(TIMEOUT).await {
                Next::Frame(_) => continue,
                Next::Closed(code) => return code,
                Next::Silence => panic!("the server did not close in time"),
            }
        }
    }

    /// Shuts the client's write side (TCP EOF, no Close frame) and reads
    /// until the server closes: what `printf ... | websocat` does.
    pub async fn shut_write_and_wait(mut self) {
        if let MaybeTlsStream::Plain(stream) = self.socket.get_ref() {
            socket2::SockRef::from(stream).shutdown(std::net::Shutdown::Write).expect("shutdown");
        }
        while let Ok(Some(Ok(_))) = tokio::time::timeout(TIMEOUT, self.socket.next()).await {}
    }

    /// Sends a Close frame and reads until the server closes too.
    pub async fn close_and_wait(mut self) {
        let _ = self.socket.send(Message::Close(None)).await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(TIMEOUT, self.socket.next()).await {}
    }

    /// Closes the connection: a close frame, then the socket is dropped
    /// (the close handshake is not waited for longer than a moment).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(1), self.socket.close(None)).await;
    }
}

/// Upgrades to `url` and returns the HTTP status and body of the refusal.
pub async fn refused_upgrade(url: &str) -> (u16, String) {
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => panic!("the upgrade to {url} should have been refused"),
        Err(tungstenite::Error::Http(response)) => {
            let body = response.body().clone().unwrap_or_default();
            (response.status().as_u16(), String::from_utf8_lossy(&body).into_owned())
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

/// An HTTP response: status and body.
pub struct Response {
    pub status: u16,
    pub body: String,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("JSON body, got {}", self.body))
    }
}

fn into_response(result: Result<ureq::Response, ureq::Error>) -> Response {
    let response = match result {
        Ok(response) => response,
        Err(ureq::Error::Status(_, response)) => response,
        Err(error) => panic!("HTTP request failed: {error}"),
    };
    let status = response.status();
    Response { status, body: response.into_string().expect("a text body") }
}

pub async fn get(url: String) -> Response {
    tokio::task::spawn_blocking(move || into_response(ureq::get(&url).call()))
        .await
        .expect("the request runs")
}

pub async fn post(url: String, body: Value) -> Response {
    tokio::task::spawn_blocking(move || into_response(ureq::post(&url).send_json(body)))
        .await
        .expect("the request runs")
}

/// Every message of the room whose messages are at `url`
/// (`.../api/rooms/ROOM/messages`), paging forward with `since`.
pub async fn all_messages(url: &str) -> Vec<Value> {
    let mut messages = Vec::new();
    let mut since = 0;
    loop {
        let page = get(format!("{url}?since={since}&limit=200")).await.json();
        let batch = page["messages"].as_array().expect("a list of messages").clone();
        since = batch.last().map_or(since, |m| m["id"].as_u64().expect("an id"));
        messages.extend(batch);
        if page["more"] == false {
            return messages;
        }
    }
}

/// The stored messages as `text -> id`, after checking that their ids
/// are 1, 2, 3... with no hole and each text is stored once.
pub fn gapless_by_text(stored: &[Value]) -> std::collections::HashMap<&str, u64> {
    let ids: Vec<u64> = stored.iter().map(|m| m["id"].as_u64().expect("an id")).collect();
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "ids without holes");
    let by_text: std::collections::HashMap<&str, u64> = stored
        .iter()
        .map(|m| (m["text"].as_str().expect("a text"), m["id"].as_u64().expect("an id")))
        .collect();
    assert_eq!(by_text.len(), stored.len(), "each message stored once");
    by_text
}

/// The ids of a list of messages.
pub fn ids(messages: &Value) -> Vec<u64> {
    messages.as_array().expect("a list").iter().map(|m| m["id"].as_u64().expect("an id")).collect()
}

/// The `walkie` binary, run as a child process on `db`; killed when dropped.
pub struct Server {
    child: std::process::Child,
    pub address: String,
}

impl Server {
    /// Starts the binary (flood control out of the way) and waits for its
    /// `listening on http://ADDR` line.
    pub fn start(db: &TestDb) -> Self {
        Self::start_on(&db.url)
    }

    /// Starts the binary on the database at `url`.
    pub fn start_on(url: &str) -> Self {
        Self::start_with(url, &[])
    }

    /// Starts the binary on the database at `url` with more flags.
    pub fn start_with(url: &str, flags: &[&str]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_walkie"))
            .args(["--bind", "127.0.0.1:0", "--rate", "100000", "--burst", "100000"])
            .args(["--database-url", url])
            .args(flags)
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (address_tx, address_rx) = std::sync::mpsc::channel();
        // WALKIE_TEST_LOG=FILE keeps every node's log, for a failing test.
        let mut log = std::env::var("WALKIE_TEST_LOG")
            .ok()
            .and_then(|path| std::fs::OpenOptions::new().create(true).append(true).open(path).ok());
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(file) = log.as_mut() {
                    use std::io::Write;
                    let _ = writeln!(file, "{line}");
                }
                if let Some(address) = line.split("listening on http://").nth(1) {
                    let _ = address_tx.send(address.trim().to_owned());
                }
            }
        });
        let mut server = Self { child, address: String::new() };
        server.address =
            address_rx.recv_timeout(Duration::from_secs(20)).expect("the listening line");
        assert!(!server.address.ends_with(":0"), "the real port is logged: {}", server.address);
        server
    }

    pub fn ws_url(&self, query: &str) -> String {
        format!("ws://{}/ws{query}", self.address)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Sends a signal (`TERM`, `KILL`...).
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits (at most 20 s) for the process to exit.
    pub async fn wait(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("the child can be waited for") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "walkie did not exit in time");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
