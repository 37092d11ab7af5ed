//! Reading the socket: reassembling fragments, flood control, and the
//! close code each protocol error calls for. Complete text messages go on
//! to `commands.rs`.

use std::time::Instant;

use actix::prelude::*;
use actix_http::ws::Item;
use actix_web_actors::ws;
use bytes::{Bytes, BytesMut};

use super::flood::Verdict;
use super::WsSession;
use crate::error::ChatError;
use crate::protocol::decode;

type Ctx = ws::WebsocketContext<WsSession>;

/// A message being received in fragments.
pub(super) struct Fragments {
    text: bool,
    data: BytesMut,
}

impl WsSession {
    /// Adds a fragment; returns the whole message once the last one came.
    fn reassemble(&mut self, item: Item, ctx: &mut Ctx) -> Option<(bool, Bytes)> {
        let (first, data, last) = match item {
            Item::FirstText(data) => (Some(true), data, false),
            Item::FirstBinary(data) => (Some(false), data, false),
            Item::Continue(data) => (None, data, false),
            Item::Last(data) => (None, data, true),
        };
        if let Some(text) = first {
            self.fragments = Some(Fragments { text, data: BytesMut::new() });
        }
        let Some(fragments) = self.fragments.as_mut() else {
            self.close(ctx, ws::CloseCode::Protocol, "continuation without a first fragment");
            return None;
        };
        if fragments.data.len() + data.len() > self.limits.max_frame_bytes {
            self.close(ctx, ws::CloseCode::Size, "message too big");
            return None;
        }
        fragments.data.extend_from_slice(&data);
        if !last {
            return None;
        }
        let whole = self.fragments.take()?;
        Some((whole.text, whole.data.freeze()))
    }

    /// Applies flood control to one complete message; `false` when it must
    /// not be acted on (it was answered, or the session is closing).
    fn admit(&mut self, message: Option<&str>, ctx: &mut Ctx) -> bool {
        match self.flood.check(Instant::now()) {
            Verdict::Allow => true,
            Verdict::Limit => {
                let reference = message.and_then(|text| match decode(text, usize::MAX) {
                    Ok(frame) => frame.reference,
                    Err(rejected) => rejected.reference,
                });
                let error = ChatError::RateLimited(self.limits.rate, self.limits.burst);
                self.send_error(ctx, &error, reference.as_ref());
                false
            }
            Verdict::Close => {
                log::warn!(
                    "session {} ({}) from {} keeps flooding: closing it",
                    self.id,
                    self.name,
                    self.peer
                );
                self.close(ctx, ws::CloseCode::Policy, "flooding");
                false
            }
        }
    }

    fn on_message(&mut self, text: bool, data: Bytes, ctx: &mut Ctx) {
        if !text {
            if !self.admit(None, ctx) {
                return;
            }
            let error =
                ChatError::BadRequest("binary frames are not supported: send JSON text".into());
            return self.send_error(ctx, &error, None);
        }
        match std::str::from_utf8(&data) {
            Ok(text) => {
                if self.admit(Some(text), ctx) {
                    self.on_text(text, ctx)
                }
            }
            Err(_) => self.close(ctx, ws::CloseCode::Invalid, "text frame is not valid UTF-8"),
        }
    }

    fn on_protocol_error(&mut self, error: ws::ProtocolError, ctx: &mut Ctx) {
        match error {
            ws::ProtocolError::Overflow => self.close(ctx, ws::CloseCode::Size, "message too big"),
            // The socket's stream (`http::ws`) ends at every transport
            // error, so the only I/O error left is actix-web-actors'
            // report of a text frame that is not UTF-8.
            ws::ProtocolError::Io(_) => {
                self.close(ctx, ws::CloseCode::Invalid, "text frame is not valid UTF-8")
            }
            error => {
                log::info!("session {} ({}): protocol error, closing: {error}", self.id, self.name);
                self.close(ctx, ws::CloseCode::Protocol, "protocol error")
            }
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, item: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let message = match item {
            Ok(message) => message,
            Err(error) => return self.on_protocol_error(error, ctx),
        };
        self.last_heard = Instant::now();
        match message {
            ws::Message::Text(text) => {
                if self.admit(Some(&text), ctx) {
                    self.on_text(&text, ctx)
                }
            }
            ws::Message::Binary(data) => self.on_message(false, data, ctx),
            ws::Message::Continuation(item) => {
                if let Some((text, data)) = self.reassemble(item, ctx) {
                    self.on_message(text, data, ctx);
                }
            }
            ws::Message::Ping(payload) => {
                // Pings take a token too: a client that floods pings and
                // never reads would otherwise pile up pongs.
                if self.admit(None, ctx) {
                    ctx.pong(&payload);
                }
            }
            ws::Message::Pong(_) | ws::Message::Nop => {}
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
        }
    }
}
