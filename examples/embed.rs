//! walkie inside your own actix-web app: your routes at the root, walkie's
//! chat (web client, WebSocket, HTTP API) under `/chat`, and a handler of
//! yours that posts to a room — the equivalent of Django Channels'
//! `channel_layer.group_send`.
//!
//! ```sh
//! cargo run --example embed            # then open http://127.0.0.1:8090/chat/
//! curl -X POST -d 'deploy finished' http://127.0.0.1:8090/announce
//! ```
//!
//! `EMBED_BIND` and `EMBED_DATABASE` override the address and the file.

use actix_web::{web, App, HttpResponse, HttpServer};
use walkie::{Config, Walkie};

/// Your own route: posts its body to the `announcements` room, where every
/// member sees it live.
async fn announce(walkie: web::Data<Walkie>, body: String) -> HttpResponse {
    match walkie.post("announcements", "webapp", &body).await {
        Ok(message) => HttpResponse::Created().json(message),
        Err(error) => HttpResponse::build(error.code().http_status()).body(error.to_string()),
    }
}

async fn home() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html").body(r#"<a href="/chat/">chat</a>"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let bind = std::env::var("EMBED_BIND").unwrap_or_else(|_| "127.0.0.1:8090".into());
    let database = std::env::var("EMBED_DATABASE").unwrap_or_else(|_| "embed.db".into());
    let walkie = Walkie::start(&Config::with_database(database)).map_err(std::io::Error::other)?;
    let routes = walkie.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(routes.clone()))
            .route("/", web::get().to(home))
            .route("/announce", web::post().to(announce))
            .service(web::scope("/chat").configure(routes.routes()))
    })
    .shutdown_timeout(5)
    .bind(&bind)?;
    for address in server.addrs() {
        log::info!("listening on http://{address}");
    }
    server.run().await?;
    // Store and acknowledge whatever the sessions handed on before exit.
    walkie.shutdown().await;
    Ok(())
}
