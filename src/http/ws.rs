//! `GET /ws`: checks the upgrade request in the contract's order (origin
//! 403, token 401, name 400, capacity 503), then hands the socket to a new
//! [`WsSession`].

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::error::PayloadError;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use bytes::Bytes;
use futures_core::Stream;

use crate::access::Refusal;
use crate::domain::UserName;
use crate::session::WsSession;
use crate::Walkie;

/// The first value of `key` in a query string. Parsing is lenient (as
/// browsers are): a repeated or odd parameter never hides the token check.
fn query_param(query: &str, key: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
    pairs.into_iter().find(|(name, _)| name == key).map(|(_, value)| value)
}

/// Refuses with a plain-text reason, before the upgrade.
fn refuse(refusal: &Refusal) -> HttpResponse {
    let status = match refusal {
        Refusal::Origin(_) => StatusCode::FORBIDDEN,
        Refusal::Token(_) => StatusCode::UNAUTHORIZED,
        Refusal::Name(_) => StatusCode::BAD_REQUEST,
        Refusal::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    log::info!("refused a WebSocket upgrade ({status}): {refusal}");
    HttpResponse::build(status).content_type("text/plain; charset=utf-8").body(refusal.to_string())
}

fn header_value(request: &HttpRequest, name: header::HeaderName) -> Option<&str> {
    request.headers().get(name).and_then(|value| value.to_str().ok())
}

/// The bearer token of an `Authorization` header, if any.
pub fn bearer_token(request: &HttpRequest) -> Option<&str> {
    header_value(request, header::AUTHORIZATION)?.strip_prefix("Bearer ").map(str::trim)
}

pub async fn upgrade(
    request: HttpRequest,
    stream: web::Payload,
    walkie: web::Data<Walkie>,
) -> Result<HttpResponse, actix_web::Error> {
    let access = walkie.access();
    let origin = header_value(&request, header::ORIGIN);
    if let Err(refusal) = access.check_origin(origin, header_value(&request, header::HOST)) {
        return Ok(refuse(&refusal));
    }
    let query = request.query_string();
    let token = query_param(query, "token");
    let name = match access.authenticate(token.as_deref().or_else(|| bearer_token(&request))) {
        Err(refusal) => return Ok(refuse(&refusal)),
        Ok(Some(name)) => name,
        Ok(None) => match query_param(query, "name").map(UserName::parse).transpose() {
            Ok(name) => name.unwrap_or_else(UserName::guest),
            Err(reason) => return Ok(refuse(&Refusal::Name(reason))),
        },
    };
    let permit = match access.admit() {
        Ok(permit) => permit,
        Err(refusal) => return Ok(refuse(&refusal)),
    };
    let peer = request.peer_addr().map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
    let session = WsSession::new(name, peer, &walkie, permit);
    ws::WsResponseBuilder::new(session, &request, EndAtEof(Some(stream)))
        .frame_size(walkie.limits().max_frame_bytes)
        .start()
}

/// The socket's bytes, with the client's EOF (its write side shut, maybe
/// with no Close frame), or any other transport error, as the end of the
/// stream rather than an error.
///
/// actix-http reports that EOF as `PayloadError::Incomplete`, and
/// actix-web-actors turns an error into a protocol error at once, before
/// it decodes the frames it has already read: a client that sent `join`,
/// `say` and shut its socket lost both. Ending the stream instead lets the
/// decoder hand the session every complete frame first; an incomplete
/// last frame is dropped, and the session stops as after a Close.
///
/// Other transport errors (a reset connection) end it the same way, after
/// a log line. That also leaves the session one meaning for
/// `ProtocolError::Io`: actix-web-actors' only other source of it is a
/// text frame that is not UTF-8, which the session closes with 1007.
struct EndAtEof(Option<web::Payload>);

impl Stream for EndAtEof {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(payload) = self.0.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(payload).poll_next(cx) {
            Poll::Ready(Some(Err(PayloadError::Incomplete(_)))) | Poll::Ready(None) => {
                self.0 = None;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(error))) => {
                log::info!("a WebSocket's connection failed, ending its session: {error}");
                self.0 = None;
                Poll::Ready(None)
            }
            other => other,
        }
    }
}
