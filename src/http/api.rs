//! The JSON API under `/api`: rooms, their history, posting from outside a
//! socket.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use super::error::{bad_request, ApiError};
use super::ws::bearer_token;
use crate::chat::{GetStats, ListRooms, Post, RoomExists};
use crate::domain::{Channel, IdempotencyKey, Limit, MessageId, RoomName, Text, UserName};
use crate::error::ChatError;
use crate::protocol::ChatMessage;
use crate::store::PageQuery;
use crate::Walkie;

#[derive(Serialize)]
struct RoomInfo {
    name: RoomName,
    members: usize,
    messages: MessageId,
}

/// `GET /api/rooms`.
pub async fn rooms(walkie: web::Data<Walkie>) -> Result<HttpResponse, ApiError> {
    let live = walkie.chat().send(ListRooms).await?;
    let stored: HashMap<RoomName, MessageId> =
        walkie.store().rooms().await?.into_iter().map(|room| (room.name, room.last_id)).collect();
    let rooms: Vec<RoomInfo> = live
        .into_iter()
        .map(|room| RoomInfo {
            messages: stored.get(&room.name).copied().unwrap_or(0),
            name: room.name,
            members: room.members,
        })
        .collect();
    Ok(HttpResponse::Ok().json(rooms))
}

/// Query of `GET /api/rooms/{room}/messages`, kept as text so that a bad
/// value gets the API's own `bad_request`.
#[derive(Deserialize)]
pub struct PageParams {
    before: Option<String>,
    since: Option<String>,
    limit: Option<String>,
}

fn parse_id(name: &str, value: Option<String>) -> Result<Option<MessageId>, ApiError> {
    value
        .map(|value| value.parse::<MessageId>())
        .transpose()
        .map_err(|_| bad_request(format!("{name} must be a non-negative integer")))
}

#[derive(Serialize)]
struct PageBody<'a> {
    room: &'a str,
    messages: Vec<ChatMessage>,
    more: bool,
}

/// The room named in the path, if it exists; direct conversations never do
/// here (the HTTP API does not reveal them).
async fn existing_room(walkie: &Walkie, room: String) -> Result<RoomName, ApiError> {
    let not_found = || ApiError(ChatError::NotFound(room.clone()));
    let name = RoomName::parse(room.as_str()).map_err(|_| not_found())?;
    if !walkie.chat().send(RoomExists { room: name.clone() }).await? {
        return Err(not_found());
    }
    Ok(name)
}

/// `GET /api/rooms/{room}/messages?before=&since=&limit=`.
pub async fn messages(
    walkie: web::Data<Walkie>,
    room: web::Path<String>,
    params: web::Query<PageParams>,
) -> Result<HttpResponse, ApiError> {
    let PageParams { before, since, limit } = params.into_inner();
    let before = parse_id("before", before)?;
    let since = parse_id("since", since)?;
    let limit = match limit {
        None => Limit::default(),
        Some(value) => value
            .parse::<u64>()
            .map_err(|_| bad_request("limit must be an integer"))
            .and_then(|value| Limit::try_from(value).map_err(bad_request))?,
    };
    let room = existing_room(&walkie, room.into_inner()).await?;
    let channel = Channel::Room(room.clone());
    let query = PageQuery { channel, since, before, upto: None, limit: limit.get() };
    let page = walkie.store().page(query).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        room: room.as_str(),
        messages: page.messages,
        more: page.more,
    }))
}

/// Body of `POST /api/rooms/{room}/messages`.
#[derive(Deserialize)]
pub struct PostBody {
    from: UserName,
    text: Text,
    idempotency_key: Option<IdempotencyKey>,
}

/// `POST /api/rooms/{room}/messages`: stores, delivers live, answers 201
/// (200 for a resend with the same `idempotency_key`, 409 for a conflict).
pub async fn post(
    request: HttpRequest,
    walkie: web::Data<Walkie>,
    room: web::Path<String>,
    body: web::Json<PostBody>,
) -> Result<HttpResponse, ApiError> {
    let PostBody { from, text, idempotency_key } = body.into_inner();
    authorize(&walkie, &request, &from)?;
    let room = RoomName::parse(room.into_inner()).map_err(bad_request)?;
    text.check_length(walkie.limits().max_text_chars).map_err(bad_request)?;
    let posted = walkie.chat().send(Post { room, from, text, idempotency_key }).await??;
    // 201 when stored now; 200 with the stored message for a resend.
    let mut response = if posted.created { HttpResponse::Created() } else { HttpResponse::Ok() };
    Ok(response.json(posted.message))
}

/// With an auth secret, a post needs `Authorization: Bearer <JWT>` (401
/// without a valid one), and may only post as the token's user (403).
fn authorize(walkie: &Walkie, request: &HttpRequest, from: &UserName) -> Result<(), ApiError> {
    if !walkie.access().requires_tokens() {
        return Ok(());
    }
    let name = walkie
        .access()
        .authenticate(bearer_token(request))
        .map_err(|refusal| ApiError(ChatError::Unauthorized(refusal.to_string())))?;
    match name {
        Some(name) if &name == from => Ok(()),
        _ => Err(ApiError(ChatError::Forbidden(format!(
            "this token may only post as its own user, not as {from}"
        )))),
    }
}

/// `GET /metrics`: Prometheus' text format.
pub async fn metrics(walkie: web::Data<Walkie>) -> Result<HttpResponse, ApiError> {
    let stats = walkie.chat().send(GetStats).await?;
    let metrics = walkie.metrics();
    let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
    metrics.connections.set(gauge(walkie.access().open_connections()));
    metrics.rooms.set(gauge(stats.rooms));
    metrics.members.set(gauge(stats.members));
    metrics.persistence_queue.set(gauge(stats.waiting_writes));
    let text = metrics.render().map_err(|error| {
        log::error!("rendering /metrics failed: {error}");
        ApiError(ChatError::Internal)
    })?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
}

/// `GET /healthz`: 200 once the database answers.
pub async fn health(walkie: web::Data<Walkie>) -> HttpResponse {
    match walkie.store().check().await {
        Ok(()) => HttpResponse::Ok().content_type("text/plain").body("ok"),
        Err(error) => {
            log::error!("health check: the database does not answer: {error}");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unreachable")
        }
    }
}
