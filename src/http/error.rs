//! [`ApiError`]: how HTTP API errors are rendered: `{"code","message"}`
//! with the status [`ErrorCode::http_status`] gives.

use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::{ChatError, ErrorCode};

/// An HTTP API error; wraps the same [`ChatError`] a socket would get.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct ApiError(#[from] pub ChatError);

#[derive(Serialize)]
struct Body<'a> {
    code: ErrorCode,
    message: &'a str,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> actix_web::http::StatusCode {
        self.0.http_status()
    }

    fn error_response(&self) -> HttpResponse {
        let message = self.0.to_string();
        HttpResponse::build(self.status_code())
            .json(Body { code: self.0.code(), message: &message })
    }
}

impl From<actix::MailboxError> for ApiError {
    fn from(error: actix::MailboxError) -> Self {
        log::error!("the chat server did not answer an HTTP request: {error}");
        ApiError(ChatError::Internal)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        log::error!("an HTTP request's database query failed: {error}");
        ApiError(ChatError::Internal)
    }
}

/// Shorthand for a `bad_request`.
pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(ChatError::BadRequest(message.into()))
}
