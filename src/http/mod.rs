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

impl Walkie {
    /// Mounts walkie's routes (`/`, `/ws`, `/healthz`, `/api/...`) on an
    /// app or a scope: `App::new().service(web::scope("/chat").configure(walkie.routes()))`.
    ///
    /// Declared here, not in `walkie.rs`, so that `http` builds on
    /// [`Walkie`] and `Walkie` knows nothing of HTTP.
    pub fn routes(&self) -> impl FnOnce(&mut web::ServiceConfig) {
        let walkie = self.clone();
        move |config| routes(walkie, config)
    }
}

/// Mounts walkie's routes on `config`, relative to wherever it is mounted
/// (the root, or an embedding app's scope).
fn routes(walkie: Walkie, config: &mut web::ServiceConfig) {
    let body_limit = walkie.limits().max_frame_bytes;
    // One exact route per file of the client: an embedding app's own
    // routes beside walkie's stay its own.
    for &(path, kind, content) in client::FILES {
        config.route(&format!("/{path}"), web::get().to(move || client::file(kind, content)));
    }
    config
        .app_data(web::Data::new(walkie))
        .app_data(web::JsonConfig::default().limit(body_limit).error_handler(json_error))
        .route("/", web::get().to(client::index))
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
