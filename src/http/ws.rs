//! `GET /ws`: checks the upgrade request, then hands the socket to a new
//! [`WsSession`].

use actix_web::{web, HttpRequest, HttpResponse};
use actix_web_actors::ws;
use serde::Deserialize;

use crate::domain::UserName;
use crate::session::WsSession;
use crate::Walkie;

/// Query parameters of the upgrade request.
#[derive(Debug, Deserialize)]
struct UpgradeParams {
    name: Option<String>,
}

/// Refuses with a plain-text reason, before the upgrade.
fn refuse(reason: String) -> HttpResponse {
    HttpResponse::BadRequest()
        .content_type("text/plain; charset=utf-8")
        .body(reason)
}

pub async fn upgrade(
    request: HttpRequest,
    stream: web::Payload,
    walkie: web::Data<Walkie>,
) -> Result<HttpResponse, actix_web::Error> {
    let params = match web::Query::<UpgradeParams>::from_query(request.query_string()) {
        Ok(params) => params.into_inner(),
        Err(error) => return Ok(refuse(format!("invalid query string: {error}"))),
    };
    let name = match params.name {
        None => UserName::guest(),
        Some(name) => match UserName::parse(name) {
            Ok(name) => name,
            Err(reason) => return Ok(refuse(reason)),
        },
    };
    let peer = request
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |addr| addr.to_string());
    let limits = walkie.limits();
    let session = WsSession::new(name, peer, walkie.chat().clone(), walkie.store(), limits);
    ws::WsResponseBuilder::new(session, &request, stream)
        .frame_size(limits.max_frame_bytes)
        .start()
}
