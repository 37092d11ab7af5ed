//! HTTP: the route table, in one place. Handlers live one file per
//! resource.

mod api;
mod client;
mod error;
mod ws;

use actix_web::{error::JsonPayloadError, web, HttpRequest};

pub use error::ApiError;

use crate::error::ChatError;
use crate::Walkie;

/// Mounts walkie's routes on `config`, relative to wherever it is mounted
/// (the root, or an embedding app's scope).
pub fn routes(walkie: Walkie, config: &mut web::ServiceConfig) {
    let body_limit = walkie.limits().max_frame_bytes;
    config
        .app_data(web::Data::new(walkie))
        .app_data(web::JsonConfig::default().limit(body_limit).error_handler(json_error))
        .route("/", web::get().to(client::index))
        .route("/app.js", web::get().to(client::script))
        .route("/style.css", web::get().to(client::style))
        .route("/ws", web::get().to(ws::upgrade))
        .route("/healthz", web::get().to(api::health))
        .route("/metrics", web::get().to(api::metrics))
        .route("/api/rooms", web::get().to(api::rooms))
        .route("/api/rooms/{room}/messages", web::get().to(api::messages))
        .route("/api/rooms/{room}/messages", web::post().to(api::post));
}

/// A JSON body that does not parse or validate is a `bad_request`.
fn json_error(error: JsonPayloadError, _: &HttpRequest) -> actix_web::Error {
    ApiError(ChatError::BadRequest(format!("invalid JSON body: {error}"))).into()
}
