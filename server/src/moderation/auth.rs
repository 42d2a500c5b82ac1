//! Moderators: one shared token, compared in constant time, trades for a session cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind https). Sessions live in memory: a restart
//! signs moderators out, never anyone in. In a cluster, the control bus (`crate::cluster`)
//! carries each session to every node ([`Auth::admit`], [`Auth::revoke`]).

use axum::http::{HeaderMap, header};
use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};
use subtle::ConstantTimeEq;

pub const COOKIE: &str = "burner_mod";
/// How long a moderator stays signed in.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

pub struct Auth {
    token: String,
    secure_cookies: bool,
    sessions: Mutex<HashMap<String, Instant>>,
}

impl Auth {
    pub fn new(token: String, secure_cookies: bool) -> Self {
        Self { token, secure_cookies, sessions: Mutex::default() }
    }

    pub fn token_matches(&self, candidate: &str) -> bool {
        // Constant time in the content; the length of the real token is not a secret worth having.
        !self.token.is_empty() && bool::from(self.token.as_bytes().ct_eq(candidate.trim().as_bytes()))
    }

    /// Starts a session.
    pub fn open_session(&self) -> NewSession {
        let id = hex::encode(rand::random::<[u8; 32]>());
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, expires| *expires > now);
        sessions.insert(id.clone(), now + SESSION_LIFETIME);
        let secure = if self.secure_cookies { "; Secure" } else { "" };
        let set_cookie =
            format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_LIFETIME.as_secs());
        let lifetime = i64::try_from(SESSION_LIFETIME.as_millis()).unwrap_or(i64::MAX);
        NewSession { id, expires_at: crate::conn_log::now_ms().saturating_add(lifetime), set_cookie }
    }

    /// A session another node opened, valid until `expires_at` (ms since the epoch).
    pub fn admit(&self, id: &str, expires_at: i64) {
        let left = expires_at.saturating_sub(crate::conn_log::now_ms());
        let Ok(left) = u64::try_from(left) else { return };
        let lifetime = Duration::from_millis(left).min(SESSION_LIFETIME);
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).insert(id.to_owned(), Instant::now() + lifetime);
    }

    /// A session another node ended.
    pub fn revoke(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(id);
    }

    /// Ends the session the request carries; the `Set-Cookie` value that clears it.
    pub fn close_session(&self, headers: &HeaderMap) -> String {
        if let Some(id) = session_id(headers) {
            self.sessions.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        }
        format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// Whether the request comes from a signed-in moderator.
    pub fn is_moderator(&self, headers: &HeaderMap) -> bool {
        self.session(headers).is_some()
    }

    /// The signed-in moderator's session the request carries.
    pub fn session(&self, headers: &HeaderMap) -> Option<String> {
        session_id(headers).filter(|id| self.session_alive(id))
    }

    /// Whether a session is still signed in (not signed out, not expired).
    pub fn session_alive(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.get(id).is_some_and(|expires| *expires > Instant::now())
    }
}

/// A session just opened: its id and expiry (for the other nodes), and the `Set-Cookie` value.
pub struct NewSession {
    pub id: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
    pub set_cookie: String,
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_token_opens_a_session_that_the_cookie_proves() {
        let auth = Auth::new("s3cret-token".into(), false);
        assert!(!auth.token_matches("wrong"));
        assert!(!auth.token_matches(""));
        assert!(auth.token_matches("s3cret-token"));
        let set_cookie = auth.open_session().set_cookie;
        assert!(
            set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict") && !set_cookie.contains("Secure")
        );
        let cookie = set_cookie.split(';').next().expect("pair").to_owned();
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("theme=dark; {cookie}")).expect("header"));
        assert!(auth.is_moderator(&headers));
        auth.close_session(&headers);
        assert!(!auth.is_moderator(&headers), "signed out");
        let mut forged = HeaderMap::new();
        forged.insert(header::COOKIE, HeaderValue::from_static("burner_mod=0000"));
        assert!(!auth.is_moderator(&forged));
        assert!(Auth::new("t".into(), true).open_session().set_cookie.ends_with("; Secure"));
    }

    #[test]
    fn a_session_from_another_node_is_admitted_until_it_expires_or_is_revoked() {
        let (here, there) = (Auth::new("t".into(), false), Auth::new("t".into(), false));
        let opened = there.open_session();
        assert!(!here.session_alive(&opened.id));
        here.admit(&opened.id, opened.expires_at);
        assert!(here.session_alive(&opened.id));
        here.revoke(&opened.id);
        assert!(!here.session_alive(&opened.id), "signed out elsewhere");
        here.admit("old", crate::conn_log::now_ms() - 1);
        assert!(!here.session_alive("old"), "already expired");
    }
}
