//! A hostile client, row by row, over a raw socket so that it can send what
//! no well-behaved WebSocket library would: each row gets its exact error
//! or close code, and afterwards the server is fine and stored nothing.

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{get, TestApp, TIMEOUT};

const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CONTINUATION: u8 = 0x0;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;

/// A WebSocket spoken by hand.
struct RawSocket {
    stream: TcpStream,
}

/// What the server answered a row with.
#[derive(Debug, PartialEq)]
enum Answer {
    Error {
        code: String,
        reference: Option<String>,
    },
    Close(u16),
    /// The connection ended without a close frame.
    Gone,
}

impl RawSocket {
    async fn connect(app: &TestApp) -> Self {
        let mut stream = TcpStream::connect(app.address).await.unwrap();
        let request = format!(
            "GET /ws?name=mallory HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            app.address
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(stream.read_u8().await.unwrap());
        }
        assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
        let mut socket = Self { stream };
        assert!(matches!(socket.read().await, Some((TEXT, _))), "welcome first");
        socket
    }

    /// Writes one frame; `masked: false` breaks the rule that clients mask.
    async fn write(&mut self, opcode: u8, payload: &[u8], fin: bool, masked: bool) {
        let mut frame = vec![if fin { 0x80 | opcode } else { opcode }];
        let mask_bit = if masked { 0x80 } else { 0 };
        match payload.len() {
            len @ 0..=125 => frame.push(mask_bit | len as u8),
            len @ 126..=65535 => {
                frame.push(mask_bit | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            }
            len => {
                frame.push(mask_bit | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            frame.extend_from_slice(&[0, 0, 0, 0]); // a zero key leaves the payload as is
        }
        frame.extend_from_slice(payload);
        // ignore: the server may have closed already, which the row checks.
        let _ = self.stream.write_all(&frame).await;
    }

    async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.write(opcode, payload, true, true).await;
    }

    /// Reads one frame: opcode and payload; `None` when the stream ended.
    async fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let read = async {
            let first = self.stream.read_u8().await.ok()?;
            let length = match self.stream.read_u8().await.ok()? & 0x7f {
                126 => u64::from(self.stream.read_u16().await.ok()?),
                127 => self.stream.read_u64().await.ok()?,
                len => u64::from(len),
            };
            let mut payload = vec![0; usize::try_from(length).ok()?];
            self.stream.read_exact(&mut payload).await.ok()?;
            Some((first & 0x0f, payload))
        };
        tokio::time::timeout(TIMEOUT, read).await.expect("an answer in time")
    }

    /// The first error or close the server answers with (pings skipped).
    async fn answer(&mut self) -> Answer {
        loop {
            match self.read().await {
                Some((TEXT, payload)) => {
                    let frame: Value = serde_json::from_slice(&payload).unwrap();
                    assert_eq!(frame["type"], "error", "{frame}");
                    return Answer::Error {
                        code: frame["code"].as_str().unwrap().to_owned(),
                        reference: frame["ref"].as_str().map(str::to_owned),
                    };
                }
                Some((CLOSE, payload)) => {
                    return Answer::Close(u16::from_be_bytes([payload[0], payload[1]]));
                }
                Some(_) => continue,
                None => return Answer::Gone,
            }
        }
    }
}

fn error(code: &str) -> Answer {
    Answer::Error { code: code.into(), reference: None }
}

fn error_with_ref(code: &str, reference: &str) -> Answer {
    Answer::Error { code: code.into(), reference: Some(reference.into()) }
}

fn text(value: Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

#[tokio::test]
async fn every_hostile_frame_gets_its_exact_answer_and_leaves_no_trace() {
    let app = TestApp::spawn();
    let long = |n: usize| "x".repeat(n);
    let rows: Vec<(&str, u8, Vec<u8>, Answer)> = vec![
        ("not JSON", TEXT, b"hello?".to_vec(), error("bad_json")),
        ("a JSON array", TEXT, b"[1,2]".to_vec(), error("bad_json")),
        (
            "type of the wrong type",
            TEXT,
            text(json!({"type": ["say"], "ref": "a"})),
            error_with_ref("bad_request", "a"),
        ),
        (
            "missing field",
            TEXT,
            text(json!({"type": "say", "room": "lobby", "ref": "b"})),
            error_with_ref("bad_request", "b"),
        ),
        (
            "field of the wrong type",
            TEXT,
            text(json!({"type": "say", "room": 5, "text": "x"})),
            error("bad_request"),
        ),
        (
            "unknown type",
            TEXT,
            text(json!({"type": "fly", "ref": "c"})),
            error_with_ref("unknown_type", "c"),
        ),
        ("deeply nested", TEXT, "[".repeat(50_000).into_bytes(), error("bad_json")),
        (
            "nested inside a frame",
            TEXT,
            format!(r#"{{"type":"rooms","x":{}}}"#, "[".repeat(5_000)).into_bytes(),
            error("bad_json"),
        ),
        (
            "number out of range",
            TEXT,
            br#"{"type":"join","room":"lobby","since":1e400}"#.to_vec(),
            error("bad_json"),
        ),
        (
            "integer too big",
            TEXT,
            br#"{"type":"join","room":"lobby","since":18446744073709551616}"#.to_vec(),
            error("bad_request"),
        ),
        (
            "negative id",
            TEXT,
            text(json!({"type": "history", "room": "lobby", "before": -5})),
            error("bad_request"),
        ),
        (
            "control characters in a room",
            TEXT,
            text(json!({"type": "join", "room": "lob\u{0}by"})),
            error("bad_request"),
        ),
        (
            "over-long room",
            TEXT,
            text(json!({"type": "join", "room": long(65)})),
            error("bad_request"),
        ),
        (
            "over-long name",
            TEXT,
            text(json!({"type": "direct", "to": long(33), "text": "hi"})),
            error("bad_request"),
        ),
        (
            "over-long text",
            TEXT,
            text(json!({"type": "say", "room": "lobby", "text": long(4001), "ref": "d"})),
            error_with_ref("bad_request", "d"),
        ),
        (
            "over-long ref",
            TEXT,
            text(json!({"type": "rooms", "ref": long(65)})),
            error("bad_request"),
        ),
        (
            "blank text",
            TEXT,
            text(json!({"type": "direct", "to": "bob", "text": "\n \t"})),
            error("bad_request"),
        ),
        ("binary frame", BINARY, vec![0xff, 0x00], error("bad_request")),
        ("invalid UTF-8", TEXT, vec![b'{', 0xff, 0xfe, b'}'], Answer::Close(1007)),
        ("oversized frame", TEXT, long(70_000).into_bytes(), Answer::Close(1009)),
        ("continuation without a start", CONTINUATION, b"orphan".to_vec(), Answer::Close(1002)),
        ("over-long ping", PING, vec![0; 200], Answer::Close(1002)),
    ];
    for (what, opcode, payload, expected) in rows {
        let mut socket = RawSocket::connect(&app).await;
        socket.send(opcode, &payload).await;
        let answer = socket.answer().await;
        assert_eq!(answer, expected, "{what}");
    }

    // A frame that is not masked breaks the protocol.
    let mut socket = RawSocket::connect(&app).await;
    socket.write(TEXT, &text(json!({"type": "rooms"})), true, false).await;
    let answer = socket.answer().await;
    assert!(matches!(answer, Answer::Close(1002) | Answer::Gone), "unmasked: {answer:?}");

    // Frames after the client's close are not acted on.
    let mut socket = RawSocket::connect(&app).await;
    socket.send(CLOSE, &1000u16.to_be_bytes()).await;
    socket.send(TEXT, &text(json!({"type": "join", "room": "after-close"}))).await;
    assert!(matches!(socket.answer().await, Answer::Close(1000) | Answer::Gone));

    // The server is fine, and stored nothing of all that.
    let mut alice = app.member("alice", "lobby").await;
    assert_eq!(alice.say("lobby", "all good").await["id"], 1);
    let rooms = get(app.url("/api/rooms")).await.json();
    assert_eq!(rooms, json!([{"name": "lobby", "members": 1, "messages": 1}]));
}
