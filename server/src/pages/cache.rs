//! Rendered pages kept for the next request that would get the same page. A page is a function
//! of its `Page` value and of the response's CSP nonce, nothing else: the server renders no time
//! zone, no random id and nothing of the visitor beyond what `Page` holds (a ban sentence).
//! So a rendered body is kept cut at its nonce, and a request whose `Page` is equal to the kept
//! one gets the pieces joined around a nonce of its own: the same bytes a fresh render would
//! give, for a fraction of the work (rendering 50 messages is most of a room page's cost).
//!
//! A room's page changes with every message and every join; the `Page` comparison catches
//! that (a kept page is used only when equal), so nothing is ever stale. Bounded in bytes: a
//! page that does not fit pushes others out.

use app::page::Page;
use axum::{
    body::{Body, Bytes},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::Response,
};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
};

/// A page as rendered once: its body in pieces, the nonce having stood between each two.
pub struct Rendered {
    page: Page,
    status: StatusCode,
    /// The response's headers but its `Content-Security-Policy` (that names the nonce).
    headers: HeaderMap,
    pieces: Vec<Bytes>,
    size: usize,
}

impl Rendered {
    /// Cuts `body` at every `nonce`; `None` if the body does not carry it (nothing to vary, so
    /// nothing safe to assume either), or if the response sets a cookie (that is one visitor's).
    pub fn new(page: Page, status: StatusCode, mut headers: HeaderMap, body: &Bytes, nonce: &str) -> Option<Self> {
        if nonce.is_empty() || headers.contains_key(header::SET_COOKIE) {
            return None;
        }
        headers.remove(header::CONTENT_SECURITY_POLICY);
        // The standard library's substring search (a byte-by-byte window compare cost a fifth
        // of a render).
        let text = std::str::from_utf8(body).ok()?;
        let mut pieces = Vec::new();
        let mut from = 0;
        for (at, _) in text.match_indices(nonce) {
            pieces.push(body.slice(from..at));
            from = at + nonce.len();
        }
        if pieces.is_empty() {
            return None;
        }
        pieces.push(body.slice(from..));
        Some(Self { page, status, headers, pieces, size: body.len() })
    }

    /// The page again, with `nonce` in every place the first one stood.
    pub fn respond(&self, nonce: &str, policy: HeaderValue) -> Response {
        let mut body = Vec::with_capacity(self.size + self.pieces.len() * nonce.len());
        for (i, piece) in self.pieces.iter().enumerate() {
            if i > 0 {
                body.extend_from_slice(nonce.as_bytes());
            }
            body.extend_from_slice(piece);
        }
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, policy);
        response
    }
}

/// The kept pages, by path (a room's slug, or `/`).
pub struct PageCache {
    budget: usize,
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    pages: HashMap<String, Arc<Rendered>>,
    bytes: usize,
}

impl PageCache {
    /// Keeps pages up to `budget` bytes of bodies in all; 0 keeps none.
    pub fn new(budget: usize) -> Self {
        Self { budget, kept: Mutex::default() }
    }

    /// Whether `page` is one this cache keeps: the directory and the room pages, unless pages
    /// are not kept at all (`BURNER_PAGE_CACHE_MB=0`).
    pub fn keeps(&self, page: &Page) -> bool {
        self.budget > 0 && key(page).is_some()
    }

    /// The render kept for `page`'s place, if it is of an equal `page` (compared outside the
    /// lock: a room's page holds 50 messages).
    pub fn get(&self, page: &Page) -> Option<Arc<Rendered>> {
        let key = key(page)?;
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner).pages.get(&key).cloned();
        kept.filter(|rendered| rendered.page == *page)
    }

    /// Keeps `rendered` in place of what was kept for its page's place, making room if it must
    /// (whichever pages come first; a page over the whole budget is not kept, nor a page of a
    /// kind that never is).
    pub fn put(&self, rendered: Rendered) {
        let Some(key) = key(&rendered.page) else { return };
        if rendered.size > self.budget {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = kept.pages.remove(&key) {
            kept.bytes -= old.size;
        }
        while kept.bytes + rendered.size > self.budget {
            let Some(victim) = kept.pages.keys().next().cloned() else { break };
            if let Some(old) = kept.pages.remove(&victim) {
                kept.bytes -= old.size;
            }
        }
        kept.bytes += rendered.size;
        kept.pages.insert(key, Arc::new(rendered));
    }
}

/// Where `page` is kept, if its kind is: the directory, and each room under its own slug. Taken
/// from the page, not from the address that asked for it, which can spell one room many ways
/// (`/r/%6Cobby`) and would fill the cache with copies of one page.
fn key(page: &Page) -> Option<String> {
    match page {
        Page::Home { .. } => Some("/".to_owned()),
        Page::Room { preview, .. } => Some(format!("/r/{}", preview.room.slug)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(page: Page, body: &str) -> Rendered {
        Rendered::new(page, StatusCode::OK, HeaderMap::new(), &Bytes::from(body.to_owned()), "N0NCE")
            .expect("carries the nonce")
    }

    fn body(response: Response) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let bytes = runtime.block_on(axum::body::to_bytes(response.into_body(), usize::MAX));
        String::from_utf8(bytes.expect("body").to_vec()).expect("utf-8")
    }

    fn not_found() -> Page {
        Page::NotFound { room: true }
    }

    #[test]
    fn a_kept_page_comes_back_with_the_new_nonce_everywhere_the_old_one_was() {
        let page = rendered(not_found(), "<script nonce=\"N0NCE\">a</script><p>N0NCE</p>");
        let response = page.respond("fresh", HeaderValue::from_static("script-src 'nonce-fresh'"));
        assert_eq!(response.headers()[header::CONTENT_SECURITY_POLICY], "script-src 'nonce-fresh'");
        assert_eq!(body(response), "<script nonce=\"fresh\">a</script><p>fresh</p>");
    }

    #[test]
    fn a_body_without_its_nonce_is_not_kept() {
        let body = Bytes::from_static(b"<p>no scripts</p>");
        assert!(Rendered::new(not_found(), StatusCode::OK, HeaderMap::new(), &body, "N0NCE").is_none());
    }

    #[test]
    fn a_response_that_sets_a_cookie_is_not_kept() {
        let mut headers = HeaderMap::new();
        headers.insert(header::SET_COOKIE, HeaderValue::from_static("session=one-visitor"));
        let body = Bytes::from_static(b"<script nonce=\"N0NCE\"></script>");
        assert!(Rendered::new(not_found(), StatusCode::OK, headers, &body, "N0NCE").is_none());
    }

    /// Room `slug`'s page (`said`: what its one message says).
    fn room(slug: &str, said: &str) -> Page {
        use app::{
            api::RoomPreview,
            protocol::{ChatMessage, Member, RoomSummary, Source},
        };
        let summary = RoomSummary { slug: slug.into(), name: slug.into(), members: 1, limit: 10, one_way: false };
        let message = ChatMessage {
            seq: 1,
            at: 1,
            author: Member { id: 1, nickname: "ann".into() },
            text: said.into(),
            mentions: Vec::new(),
            source: Source::Burner,
            edited: false,
        };
        Page::Room {
            preview: RoomPreview { room: summary, recent: Some(vec![message]), bridged_to: None },
            banned: None,
        }
    }

    #[test]
    fn only_an_equal_page_is_served_from_what_is_kept() {
        let cache = PageCache::new(1 << 20);
        cache.put(rendered(room("a", "hi"), "x N0NCE"));
        assert!(cache.get(&room("a", "hi")).is_some());
        assert!(cache.get(&room("a", "bye")).is_none(), "another page");
        assert!(cache.get(&room("b", "hi")).is_none(), "another path");
    }

    /// A room is kept once, in its own place, whatever address asked for it; a kind of page that
    /// is never kept is not.
    #[test]
    fn a_page_is_kept_in_one_place() {
        let cache = PageCache::new(1 << 20);
        cache.put(rendered(room("a", "hi"), "x N0NCE"));
        cache.put(rendered(room("a", "hi"), "x N0NCE"));
        cache.put(rendered(not_found(), "x N0NCE"));
        let kept = cache.kept.lock().expect("lock");
        assert_eq!(kept.pages.keys().collect::<Vec<_>>(), ["/r/a"]);
        assert_eq!(kept.bytes, "x N0NCE".len());
        drop(kept);
        assert!(cache.keeps(&room("a", "hi")) && !cache.keeps(&not_found()));
        assert!(!PageCache::new(0).keeps(&room("a", "hi")), "nothing is kept without a budget");
    }

    #[test]
    fn pages_are_kept_within_the_budget() {
        let cache = PageCache::new(20);
        cache.put(rendered(room("a", "hi"), "0123456789 N0NCE"));
        cache.put(rendered(room("b", "hi"), "0123456789 N0NCE"));
        let kept = cache.kept.lock().expect("lock");
        assert_eq!(kept.pages.len(), 1, "the second pushed the first out");
        assert!(kept.bytes <= 20);
        drop(kept);
        cache.put(rendered(room("c", "hi"), &format!("{} N0NCE", "x".repeat(40))));
        assert!(cache.get(&room("c", "hi")).is_none(), "a page over the whole budget is not kept");
    }
}
