//! `Refusal`: why Burner said no. One type for the hub, the posting policy, moderation, the
//! filters, the store and the server functions: a code for programs (`ErrorCode`, the wire
//! contract), a sentence for people, when trying again makes sense, and, for the logs only, the
//! underlying error. The HTTP status comes from the code ([`ErrorCode::http_status`]), so a
//! refusal reads the same over a socket, a server function or a plain HTTP answer.

use app::{
    api::ApiError,
    protocol::{ErrorCode, ServerMsg},
    rules::{MessageError, NameError},
};
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use std::{borrow::Cow, time::Duration};

type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
#[error("{sentence}")]
pub struct Refusal {
    code: ErrorCode,
    sentence: Cow<'static, str>,
    retry_after: Option<Duration>,
    /// What went wrong underneath (a database error): logged, never shown.
    #[source]
    source: Option<Source>,
}

impl Refusal {
    pub fn new(code: ErrorCode, sentence: impl Into<Cow<'static, str>>) -> Self {
        Self { code, sentence: sentence.into(), retry_after: None, source: None }
    }

    /// Trying again after `retry` may work.
    pub fn retry_after(mut self, retry: Duration) -> Self {
        self.retry_after = Some(retry);
        self
    }

    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub fn sentence(&self) -> &str {
        &self.sentence
    }

    pub fn status(&self) -> StatusCode {
        StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
    }

    /// The `error` frame a socket gets, tied to the message it refuses.
    pub fn to_message(&self, client_ref: Option<String>) -> ServerMsg {
        ServerMsg::Error {
            code: self.code,
            message: self.sentence.to_string(),
            client_ref,
            retry_after_ms: self.retry_after.map(millis),
        }
    }

    // The hub's refusals.

    pub fn room_not_found() -> Self {
        Self::new(ErrorCode::RoomNotFound, "There is no room here. It may have expired after everyone left.")
    }

    pub fn room_full(limit: u32) -> Self {
        Self::new(ErrorCode::RoomFull, format!("This room is full ({limit}/{limit})."))
    }

    pub fn room_name(error: NameError) -> Self {
        Self::new(ErrorCode::RoomNameInvalid, format!("That room name can't be used: {error}."))
    }

    pub fn room_name_taken() -> Self {
        Self::new(ErrorCode::RoomNameTaken, "A room with that name (or one that looks just like it) already exists.")
    }

    pub fn limit_invalid(max: u32) -> Self {
        Self::new(ErrorCode::LimitInvalid, format!("The participant limit must be a whole number from 2 to {max}."))
    }

    pub fn too_many_rooms() -> Self {
        Self::new(
            ErrorCode::Unavailable,
            "There are too many rooms right now. Join an existing one, or try again later.",
        )
    }

    pub fn nickname(error: NameError) -> Self {
        match error {
            NameError::Reserved => Self::new(ErrorCode::NicknameReserved, "That nickname is reserved."),
            other => Self::new(ErrorCode::NicknameInvalid, format!("That nickname can't be used: {other}.")),
        }
    }

    pub fn nickname_taken() -> Self {
        Self::new(ErrorCode::NicknameTaken, "That nickname is taken in this room.")
    }

    pub fn not_joined() -> Self {
        Self::new(ErrorCode::NotJoined, "You are not in a room: join one first.")
    }

    pub fn already_joined() -> Self {
        Self::new(ErrorCode::AlreadyJoined, "You are already in a room: leave it first.")
    }

    pub fn session_invalid() -> Self {
        Self::new(ErrorCode::SessionInvalid, "The session id must be 16 to 128 letters, digits, '-' or '_'.")
    }

    pub fn room_locked() -> Self {
        Self::new(ErrorCode::RoomLocked, "This room is locked: nobody new can join right now.")
    }

    pub fn slow_mode(retry: Duration, seconds: u64) -> Self {
        Self::new(ErrorCode::SlowMode, format!("This room is in slow mode: one message every {seconds} seconds."))
            .retry_after(retry)
    }

    pub fn client_ref_invalid() -> Self {
        Self::new(ErrorCode::BadRequest, "The message reference must be at most 64 characters.")
    }

    pub fn message(error: MessageError) -> Self {
        let code = match error {
            MessageError::Empty => ErrorCode::MessageEmpty,
            MessageError::TooLong { .. } => ErrorCode::TooLong,
        };
        Self::new(code, error.to_string())
    }

    // Rates and flood control.

    /// Over a rate: the sentence counts the seconds to wait.
    pub fn slow_down(retry: Duration) -> Self {
        let seconds = retry.as_secs_f64().ceil().max(1.0);
        let sentence = if seconds <= 1.0 {
            "Slow down: you can send again in a second.".to_owned()
        } else {
            format!("Slow down: you can send again in {seconds} seconds.")
        };
        Self::new(ErrorCode::RateLimited, sentence).retry_after(retry)
    }

    pub fn muted(retry: Duration) -> Self {
        let seconds = retry.as_secs_f64().ceil().max(1.0);
        Self::new(ErrorCode::Muted, format!("You are muted for flooding: you can send again in {seconds} seconds."))
            .retry_after(retry)
    }

    // Content filters.

    pub fn profanity() -> Self {
        Self::new(ErrorCode::Profanity, "This room does not allow profanity.")
    }

    pub fn too_many_links(max: u32) -> Self {
        Self::new(ErrorCode::TooManyLinks, format!("At most {max} links per message."))
    }

    pub fn spam() -> Self {
        Self::new(ErrorCode::Spam, "You sent that already: say something new.")
    }

    // Moderation and storage.

    pub fn banned(sentence: String) -> Self {
        Self::new(ErrorCode::Banned, sentence)
    }

    pub fn permission_denied(sentence: &'static str) -> Self {
        Self::new(ErrorCode::PermissionDenied, sentence)
    }

    pub fn bad_request(sentence: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::BadRequest, sentence)
    }

    /// The cluster's shared state (Redis) did not answer in time: nothing was done; the same
    /// request may be tried again in a moment.
    pub fn unavailable() -> Self {
        Self::new(ErrorCode::Unavailable, "Burner cannot reach the other servers just now. Trying again in a moment.")
            .retry_after(std::time::Duration::from_secs(2))
    }

    /// A moderator named something that is not there (any more).
    pub fn no_such(what: &str) -> Self {
        Self::new(ErrorCode::RoomNotFound, format!("There is no such {what} (any more)."))
    }
}

impl From<crate::store::StoreError> for Refusal {
    /// The store failed: people are told so plainly; the error goes to the log, and stays
    /// attached as the source.
    fn from(error: crate::store::StoreError) -> Self {
        tracing::error!(%error, "storage failed");
        Self::new(ErrorCode::Unavailable, "That could not be saved: the database is failing. See the server log.")
            .with_source(error)
    }
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> Self {
        ApiError::new(refusal.code, refusal.sentence)
    }
}

/// A plain HTTP answer: the status, `Retry-After` when it applies, and the sentence.
impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.sentence.into_owned()).into_response();
        if let Some(retry) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&retry.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

fn millis(retry: Duration) -> u64 {
    u64::try_from(retry.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn a_refusal_reads_the_same_on_a_socket_and_over_http() {
        let refusal = Refusal::slow_down(Duration::from_millis(2_500));
        assert_eq!(refusal.code(), ErrorCode::RateLimited);
        assert_eq!(refusal.status(), StatusCode::TOO_MANY_REQUESTS);
        let ServerMsg::Error { code, message, client_ref, retry_after_ms } = refusal.to_message(Some("r1".into()))
        else {
            panic!("an error frame")
        };
        assert_eq!((code, client_ref, retry_after_ms), (ErrorCode::RateLimited, Some("r1".into()), Some(2_500)));
        assert_eq!(message, "Slow down: you can send again in 3 seconds.");
        let response = refusal.into_response();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers().get(header::RETRY_AFTER).map(|v| v.as_bytes()), Some(&b"2"[..]));
    }

    #[test]
    fn a_storage_failure_keeps_its_cause_for_the_log_but_never_shows_it() {
        let refusal = Refusal::from(crate::store::StoreError::from(sqlx::Error::PoolTimedOut));
        assert_eq!(refusal.code(), ErrorCode::Unavailable);
        assert_eq!(refusal.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(!refusal.sentence().contains("pool"), "{}", refusal.sentence());
        let source = refusal.source().expect("the store's error").to_string();
        assert!(source.contains("pool timed out"), "{source}");
        let api = ApiError::from(refusal);
        assert_eq!(api.code, ErrorCode::Unavailable);
    }
}
