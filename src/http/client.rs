//! The web client, compiled into the binary so `walkie` serves it from any
//! working directory: `static/`, plain files and JavaScript modules, no
//! build step.

use actix_web::HttpResponse;

/// Every file of the client: its path under the mount point, its type and
/// its content.
pub const FILES: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript", include_str!("../../static/app.js")),
    ("state.js", "text/javascript", include_str!("../../static/state.js")),
    ("view.js", "text/javascript", include_str!("../../static/view.js")),
    ("text.js", "text/javascript", include_str!("../../static/text.js")),
    ("storage.js", "text/javascript", include_str!("../../static/storage.js")),
    ("style.css", "text/css", include_str!("../../static/style.css")),
];

const INDEX_HTML: &str = include_str!("../../static/index.html");

pub async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type("text/html; charset=utf-8").body(INDEX_HTML)
}

/// One of [`FILES`].
pub async fn file(kind: &'static str, content: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(format!("{kind}; charset=utf-8")).body(content)
}
