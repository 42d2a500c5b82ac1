//! The few browser facilities the pages use: the tab's session id, the remembered nickname,
//! local clock times. On the server they are inert, so components compile for both sides; they
//! are only called from event handlers and effects, which run in the browser.

#[cfg(feature = "hydrate")]
mod imp {
    use web_sys::Storage;

    const NICKNAME_KEY: &str = "burner.nickname";
    const SESSION_KEY: &str = "burner.session";

    fn local() -> Option<Storage> {
        web_sys::window()?.local_storage().ok()?
    }

    fn session_storage() -> Option<Storage> {
        web_sys::window()?.session_storage().ok()?
    }

    pub fn remembered_nickname() -> Option<String> {
        local()?.get_item(NICKNAME_KEY).ok()?
    }

    pub fn remember_nickname(nickname: &str) {
        if let Some(storage) = local() {
            let _ = storage.set_item(NICKNAME_KEY, nickname);
        }
    }

    thread_local! {
        /// The session of this page, once known: it must not change while the page lives,
        /// even where storage is blocked.
        static SESSION: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    }

    /// A random id kept for the life of this tab (sessionStorage survives reloads, not new tabs).
    /// The server ties this tab's messages to it: one-way rooms never show them back here.
    pub fn tab_session() -> String {
        if let Some(known) = SESSION.with_borrow(Clone::clone) {
            return known;
        }
        let storage = session_storage();
        let id = match storage.as_ref().and_then(|s| s.get_item(SESSION_KEY).ok().flatten()) {
            Some(existing) if existing.len() >= 16 => existing,
            _ => {
                let id = random_hex(16);
                if let Some(storage) = storage {
                    let _ = storage.set_item(SESSION_KEY, &id);
                }
                id
            }
        };
        SESSION.set(Some(id.clone()));
        id
    }

    /// A short random tag, unique enough to tell this page's message references from another's.
    pub fn random_tag() -> String {
        random_hex(4)
    }

    fn random_hex(len: usize) -> String {
        let mut bytes = vec![0u8; len];
        let filled = web_sys::window()
            .and_then(|w| w.crypto().ok())
            .is_some_and(|c| c.get_random_values_with_u8_array(&mut bytes).is_ok());
        if !filled {
            for byte in &mut bytes {
                *byte = (js_sys::Math::random() * 256.0) as u8;
            }
        }
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// `14:05` in the reader's own time zone.
    pub fn local_time(at_ms: i64) -> String {
        let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64));
        format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
    }

    pub fn now_ms() -> f64 {
        js_sys::Date::now()
    }
}

#[cfg(not(feature = "hydrate"))]
mod imp {
    pub fn remembered_nickname() -> Option<String> {
        None
    }

    pub fn remember_nickname(_nickname: &str) {}

    pub fn tab_session() -> String {
        String::new()
    }

    pub fn random_tag() -> String {
        String::new()
    }

    pub fn local_time(_at_ms: i64) -> String {
        String::new()
    }

    pub fn now_ms() -> f64 {
        0.0
    }
}

pub use imp::*;
