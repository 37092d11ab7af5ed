//! Errors a client can cause, and their protocol codes.
//!
//! Policy (the one place where it is decided):
//! - A bad frame or request gets an error reply with one of the protocol's
//!   codes; the connection lives on.
//! - Internal failures (the database, a dead actor) are logged with their
//!   cause where they happen; the client only gets `internal` and a fixed
//!   message, never a database error's text.
//! - [`ChatError::code`] maps every error to its wire code, and
//!   [`ErrorCode::http_status`] maps a code to its HTTP status.

use actix_web::http::StatusCode;
use serde::Serialize;

/// The `code` of an `error` frame, and of an HTTP API error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// `bad_json`: the frame is not a JSON object (HTTP 400).
    BadJson,
    /// `unknown_type`: the frame's `type` is not a client command (HTTP 400).
    UnknownType,
    /// `bad_request`: no string `type`, or a field missing, mistyped or out of range (400).
    BadRequest,
    /// `not_in_room`: the session has not joined the room it names (HTTP 403).
    NotInRoom,
    /// `forbidden`: another user's direct conversation, or a bad token (403, or 401).
    Forbidden,
    /// `rate_limited`: the session is over its frame rate; the frame was dropped (429).
    RateLimited,
    /// `internal`: the server failed and did not act on the frame; send it again (500).
    Internal,
    /// `conflict`: an `idempotency_key` reused with another room or text (HTTP 409).
    Conflict,
    /// HTTP API only: a room that does not exist (or is a direct conversation).
    NotFound,
}

impl ErrorCode {
    /// The code as it is written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadJson => "bad_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::Conflict => "conflict",
            ErrorCode::NotFound => "not_found",
        }
    }

    /// The status an HTTP API error with this code answers with.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::BadJson | ErrorCode::UnknownType | ErrorCode::BadRequest => {
                StatusCode::BAD_REQUEST
            }
            ErrorCode::NotInRoom | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::Conflict => StatusCode::CONFLICT,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Everything that can go wrong with a client's frame or request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChatError {
    /// `bad_json`; holds the parser's complaint, shown to the client.
    #[error("{0}")]
    BadJson(String),
    /// `unknown_type`; holds a message naming the unknown `type`.
    #[error("{0}")]
    UnknownType(String),
    /// `bad_request`; holds what was wrong with the frame or request.
    #[error("{0}")]
    BadRequest(String),
    /// `not_in_room`; holds the room's name.
    #[error("you have not joined room {0}")]
    NotInRoom(String),
    /// `forbidden`; holds why (e.g. someone else's direct conversation).
    #[error("{0}")]
    Forbidden(String),
    /// `not_found` (HTTP API only); holds the room's name as requested.
    #[error("room {0} does not exist")]
    NotFound(String),
    /// `conflict`: an idempotency key reused with another room or text.
    #[error("this idempotency_key was used for another message (another room or text)")]
    Conflict,
    /// `rate_limited`; holds the session's rate (frames per second) and burst.
    #[error("too many frames: at most {0} per second, bursts of {1}")]
    RateLimited(f64, u32),
    /// HTTP only: no valid token where one is required (status 401).
    #[error("{0}")]
    Unauthorized(String),
    /// The cause was logged where it happened; the client is told only that
    /// nothing was done, so it may try again.
    #[error("internal error: the request was not carried out, try again later")]
    Internal,
    /// `internal`, for a frame read after shutdown began: not acted on, so the
    /// client should send it again once it has reconnected.
    #[error("the server is shutting down: reconnect and send again")]
    ShuttingDown,
}

impl ChatError {
    /// The protocol code of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ChatError::BadJson(_) => ErrorCode::BadJson,
            ChatError::UnknownType(_) => ErrorCode::UnknownType,
            ChatError::BadRequest(_) => ErrorCode::BadRequest,
            ChatError::NotInRoom(_) => ErrorCode::NotInRoom,
            ChatError::Forbidden(_) => ErrorCode::Forbidden,
            ChatError::NotFound(_) => ErrorCode::NotFound,
            ChatError::RateLimited(..) => ErrorCode::RateLimited,
            ChatError::Conflict => ErrorCode::Conflict,
            ChatError::Unauthorized(_) => ErrorCode::Forbidden,
            ChatError::Internal | ChatError::ShuttingDown => ErrorCode::Internal,
        }
    }

    /// The status an HTTP API error answers with.
    pub fn http_status(&self) -> StatusCode {
        match self {
            ChatError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            other => other.code().http_status(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_the_protocol_spells_them() {
        let codes = [
            (ErrorCode::BadJson, "\"bad_json\""),
            (ErrorCode::UnknownType, "\"unknown_type\""),
            (ErrorCode::BadRequest, "\"bad_request\""),
            (ErrorCode::NotInRoom, "\"not_in_room\""),
            (ErrorCode::Forbidden, "\"forbidden\""),
            (ErrorCode::RateLimited, "\"rate_limited\""),
            (ErrorCode::Internal, "\"internal\""),
            (ErrorCode::Conflict, "\"conflict\""),
            (ErrorCode::NotFound, "\"not_found\""),
        ];
        for (code, json) in codes {
            assert_eq!(serde_json::to_string(&code).unwrap(), json);
            assert_eq!(format!("\"{}\"", code.as_str()), json);
        }
    }

    #[test]
    fn a_missing_token_is_401_with_the_forbidden_code() {
        let error = ChatError::Unauthorized("a token is required".into());
        assert_eq!(
            (error.code(), error.http_status()),
            (ErrorCode::Forbidden, StatusCode::UNAUTHORIZED)
        );
        assert_eq!(ChatError::NotFound("x".into()).http_status(), StatusCode::NOT_FOUND);
        assert_eq!(ChatError::ShuttingDown.code(), ErrorCode::Internal);
    }
}
