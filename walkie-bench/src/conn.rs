//! One client connection: open it (upgrade, then `welcome`), join a room,
//! then a task that sends what it is handed and counts what arrives.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde::Serialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use crate::stats::{Seen, Shared};
use crate::Target;

/// An open, upgraded connection.
pub type Socket = WebSocketStream<TcpStream>;

/// How long opening or joining may take before the connection counts as failed.
const SETUP_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes read from a socket at a time.
const READ_BUFFER: usize = 16 * 1024;

/// The client commands the bench sends (protocol v1).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Command<'a> {
    /// Join a room (from message `since` on, when given).
    Join {
        room: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    /// Post to a joined room; `ref` asks for the acknowledgement to carry it.
    Say {
        room: &'a str,
        text: &'a str,
        #[serde(rename = "ref")]
        reference: String,
    },
}

impl Command<'_> {
    /// The frame's JSON text.
    pub fn encode(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// One server (a node of a cluster): its `host:port` and its address.
#[derive(Debug, Clone)]
pub struct Server {
    /// As given, for the upgrade's URL.
    pub host: String,
    /// Resolved once.
    pub address: SocketAddr,
}

/// The servers of `--addr`, resolved once, so that thousands of
/// connections do not each ask the resolver.
pub async fn resolve(target: &Target) -> Result<Vec<Server>, String> {
    let mut servers = Vec::new();
    for host in &target.addr {
        let address = tokio::net::lookup_host(host)
            .await
            .map_err(|error| format!("cannot resolve {host}: {error}"))?
            .next()
            .ok_or_else(|| format!("{host} resolves to no address"))?;
        servers.push(Server { host: host.clone(), address });
    }
    if servers.is_empty() {
        return Err("no --addr".into());
    }
    Ok(servers)
}

/// Which of `count` servers connection number `index` uses.
pub fn node_of(index: usize, count: usize) -> usize {
    index % count.max(1)
}

/// Opens connection number `index` as `name` to `server` and waits for `welcome`.
pub async fn open(
    target: &Target,
    server: &Server,
    index: usize,
    name: &str,
) -> Result<Socket, String> {
    let (host, server) = (&server.host, server.address);
    let opening = async {
        let socket = match server.ip() {
            IpAddr::V4(_) => TcpSocket::new_v4(),
            IpAddr::V6(_) => TcpSocket::new_v6(),
        }
        .map_err(|error| format!("socket: {error}"))?;
        if target.sources > 1 && server.ip().is_loopback() {
            let last = 1 + (index % usize::from(target.sources)) as u8;
            socket
                .bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)), 0))
                .map_err(|error| format!("bind 127.0.0.{last}: {error}"))?;
        }
        let stream = socket.connect(server).await.map_err(|error| format!("connect: {error}"))?;
        stream.set_nodelay(true).map_err(|error| format!("nodelay: {error}"))?;
        let url = format!("ws://{host}/ws?name={name}{}", token_param(target, name)?);
        // tungstenite zeroes its read buffer before every read: the default
        // 128 KiB made that memset a fifth of the bench's time.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
        let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config))
            .await
            .map_err(|error| format!("upgrade: {error}"))?;
        wait_for(&mut ws, "welcome").await?;
        Ok(ws)
    };
    tokio::time::timeout(SETUP_TIMEOUT, opening)
        .await
        .unwrap_or_else(|_| Err("timed out opening".into()))
}

/// Joins `room` and waits for `joined` (presence and other frames before it are skipped).
pub async fn join(ws: &mut Socket, room: &str) -> Result<(), String> {
    join_since(ws, room, None).await
}

/// Joins `room` from message `since` on (a reconnection catching up) and
/// waits for `joined`.
pub async fn join_since(ws: &mut Socket, room: &str, since: Option<u64>) -> Result<(), String> {
    let joining = async {
        ws.send(Message::text(Command::Join { room, since }.encode()))
            .await
            .map_err(|error| format!("send join: {error}"))?;
        wait_for(ws, "joined").await
    };
    tokio::time::timeout(SETUP_TIMEOUT, joining)
        .await
        .unwrap_or_else(|_| Err("timed out joining".into()))
}

/// `&token=...` when the server needs one.
fn token_param(target: &Target, name: &str) -> Result<String, String> {
    let Some(secret) = &target.secret else { return Ok(String::new()) };
    #[derive(Serialize)]
    struct Claims<'a> {
        sub: &'a str,
        exp: u64,
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|error| format!("clock: {error}"))?;
    let claims = Claims { sub: name, exp: now.as_secs() + 24 * 3600 };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|error| format!("token: {error}"))?;
    Ok(format!("&token={token}"))
}

/// Reads frames until one of type `wanted`; an `error` frame or a close fails.
async fn wait_for(ws: &mut Socket, wanted: &str) -> Result<(), String> {
    while let Some(message) = ws.next().await {
        let message = message.map_err(|error| format!("waiting for {wanted}: {error}"))?;
        if let Message::Text(text) = message {
            match crate::stats::frame_type(text.as_str()) {
                Some(kind) if kind == wanted => return Ok(()),
                Some("error") => return Err(format!("waiting for {wanted}: {}", text.as_str())),
                _ => {}
            }
        }
    }
    Err(format!("closed while waiting for {wanted}"))
}

/// A sender that keeps `window` messages waiting for acknowledgement
/// (closed loop), instead of sending at a fixed rate.
pub struct Window {
    /// The room it posts to.
    pub room: String,
    /// Messages awaiting acknowledgement at any time.
    pub size: usize,
    /// Bytes of each text.
    pub text_bytes: usize,
}

/// Runs the connection (to node `node` of `--addr`) in the background:
/// frames sent on the returned channel go out (batched into one flush),
/// frames that arrive are counted in `shared`. Dropping the sender closes
/// the connection.
pub fn spawn(
    ws: Socket,
    shared: Rc<Shared>,
    window: Option<Window>,
    node: usize,
) -> mpsc::UnboundedSender<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::task::spawn_local(drive(ws, receiver, shared, window, node));
    sender
}

async fn drive(
    ws: Socket,
    mut outgoing: mpsc::UnboundedReceiver<String>,
    shared: Rc<Shared>,
    window: Option<Window>,
    node: usize,
) {
    let (mut sink, mut stream) = ws.split();
    let mut sent = 0u64;
    let say = |shared: &Shared, window: &Window, sent: u64| {
        let text = shared.text(window.text_bytes, node);
        let reference = sent.to_string();
        Command::Say { room: &window.room, text: &text, reference }.encode()
    };
    if let Some(window) = &window {
        for _ in 0..window.size {
            let _ = sink.feed(Message::text(say(&shared, window, sent))).await;
            sent += 1;
        }
        if sink.flush().await.is_err() {
            shared.on_closed();
            return;
        }
    }
    loop {
        tokio::select! {
            next = outgoing.recv() => {
                let Some(text) = next else { break };
                let mut failed = sink.feed(Message::text(text)).await.is_err();
                while let Ok(text) = outgoing.try_recv() {
                    failed |= sink.feed(Message::text(text)).await.is_err();
                }
                if failed || sink.flush().await.is_err() {
                    shared.on_closed();
                    return;
                }
            }
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => {
                    let seen = shared.on_frame(text.as_str(), node);
                    if let (Seen::Acknowledged, Some(window)) = (seen, &window) {
                        if !shared.stopping.get() {
                            if sink.send(Message::text(say(&shared, window, sent))).await.is_err() {
                                shared.on_closed();
                                return;
                            }
                            sent += 1;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => {
                    shared.on_closed();
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }
    let _ = sink.close().await;
}
