//! The few browser facilities the pages use: the tab's session id, the remembered nickname,
//! local clock times. On the server they are inert, so components compile for both sides; they
//! are only called from event handlers and effects, which run in the browser.

#[cfg(feature = "hydrate")]
mod imp {
    use wasm_bindgen::JsCast;
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

    fn date(at_ms: i64) -> js_sys::Date {
        js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at_ms as f64))
    }

    /// The date and time in full, as the reader's locale writes them (a tooltip).
    pub fn full_date(at_ms: i64) -> String {
        date(at_ms).to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED).into()
    }

    /// The reader's calendar day of a moment, as a number that changes when the date does.
    pub fn day_of(at_ms: i64) -> u32 {
        let date = date(at_ms);
        date.get_full_year() * 512 + date.get_month() * 32 + date.get_date()
    }

    /// "Today", "Yesterday", or the date written out in the reader's locale.
    pub fn day_label(at_ms: i64) -> String {
        let day = day_of(at_ms);
        let now = now_ms() as i64;
        if day == day_of(now) {
            return "Today".to_owned();
        }
        if day == day_of(now - 86_400_000) {
            return "Yesterday".to_owned();
        }
        let options = js_sys::Object::new();
        for (key, value) in [("weekday", "long"), ("day", "numeric"), ("month", "long"), ("year", "numeric")] {
            let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
        }
        date(at_ms).to_locale_date_string("default", &options).into()
    }

    /// Writes every time the server's HTML left empty (`<time data-at=…>`) in local time.
    pub fn fill_local_times() {
        let Some(times) = document().and_then(|d| d.query_selector_all("time[data-at]").ok()) else { return };
        for i in 0..times.length() {
            let Some(time) = times.item(i).and_then(|n| n.dyn_into::<web_sys::Element>().ok()) else { continue };
            let Some(at) = time.get_attribute("data-at").and_then(|a| a.parse().ok()) else { continue };
            time.set_text_content(Some(&local_time(at)));
            let _ = time.set_attribute("title", &full_date(at));
            let _ = time.remove_attribute("data-at");
        }
    }

    fn document() -> Option<web_sys::Document> {
        web_sys::window()?.document()
    }

    /// The tab is in the background (another tab, minimised): new messages count as unread.
    pub fn is_hidden() -> bool {
        document().is_some_and(|d| d.hidden())
    }

    pub fn set_title(title: &str) {
        if let Some(document) = document() {
            document.set_title(title);
        }
    }

    /// The flame, with a red dot when there is something unread.
    pub fn set_favicon_badge(badge: bool) {
        const FLAME: &str = "<path fill='%23ea580c' d='M16 2c1 5-4 8-4 13a4 4 0 0 0 8 0c0-2-1-3-1-5 4 2 7 6 7 11a10 10 0 0 1-20 0C6 13 14 9 16 2Z'/>";
        let Some(icon) = document().and_then(|d| d.query_selector("link[rel=icon]").ok().flatten()) else { return };
        let href = if badge {
            format!(
                "data:image/svg+xml,<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'>{FLAME}<circle cx='25' cy='7' r='7' fill='%23dc2626' stroke='white' stroke-width='2'/></svg>"
            )
        } else {
            "/pkg/favicon.svg".to_owned()
        };
        let _ = icon.set_attribute("href", &href);
    }

    /// Whether desktop notifications may be shown, have been refused, or were never asked about.
    pub fn notifications_allowed() -> Option<bool> {
        use web_sys::{Notification, NotificationPermission};
        if !js_sys::Reflect::has(&js_sys::global(), &"Notification".into()).unwrap_or(false) {
            return Some(false);
        }
        match Notification::permission() {
            NotificationPermission::Granted => Some(true),
            NotificationPermission::Denied => Some(false),
            _ => None,
        }
    }

    /// Asks the browser for permission (only ever from a click); `then` hears the answer.
    pub fn ask_for_notifications(then: impl FnOnce(bool) + 'static) {
        let callback = wasm_bindgen::closure::Closure::once_into_js(move |answer: wasm_bindgen::JsValue| {
            then(answer.as_string().as_deref() == Some("granted"));
        });
        let _ = web_sys::Notification::request_permission_with_permission_callback(callback.unchecked_ref());
    }

    pub fn notify(title: &str, body: &str) {
        let options = web_sys::NotificationOptions::new();
        options.set_body(body);
        let _ = web_sys::Notification::new_with_options(title, &options);
    }

    /// Moves the keyboard focus to the element with this id.
    pub fn focus(id: &str) {
        if let Some(element) = document().and_then(|d| d.get_element_by_id(id)) {
            let _ = element.unchecked_into::<web_sys::HtmlElement>().focus();
        }
    }

    /// Moves the keyboard focus from the element with id `from`, if it has it, to `to` (before
    /// `from` goes away, so the focus is not left on the page itself).
    pub fn pass_focus(from: &str, to: &str) {
        if document().and_then(|d| d.active_element()).is_some_and(|e| e.id() == from) {
            focus(to);
        }
    }

    /// Lower case by the browser's own tables (the bundle need not carry Rust's).
    pub fn lower(s: &str) -> String {
        js_sys::JsString::from(s).to_lower_case().into()
    }

    /// Calls `f` whenever the visible part of the page changes size (an on-screen keyboard
    /// opening or closing), with its height in CSS pixels; `None` while zoomed in, when the
    /// page should keep its own size.
    pub fn on_viewport_resize(f: impl Fn(Option<f64>) + 'static) {
        let Some(viewport) = web_sys::window().and_then(|w| w.visual_viewport()) else { return };
        let target = viewport.clone();
        let listener = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || {
            f(((target.scale() - 1.0).abs() < 0.01).then(|| target.height()))
        });
        let _ = viewport.add_event_listener_with_callback("resize", listener.as_ref().unchecked_ref());
        // The page lives as long as the listener: nothing to remove it from later.
        listener.forget();
    }

    /// Calls `f` whenever the tab is shown or hidden.
    pub fn on_visibility_change(f: impl Fn(bool) + 'static) {
        let Some(document) = document() else { return };
        let listener = wasm_bindgen::closure::Closure::<dyn Fn()>::new(move || f(is_hidden()));
        let _ = document.add_event_listener_with_callback("visibilitychange", listener.as_ref().unchecked_ref());
        listener.forget();
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

    pub fn full_date(_at_ms: i64) -> String {
        String::new()
    }

    pub fn day_of(_at_ms: i64) -> u32 {
        0
    }

    pub fn day_label(_at_ms: i64) -> String {
        String::new()
    }

    pub fn is_hidden() -> bool {
        false
    }

    pub fn fill_local_times() {}

    pub fn set_title(_title: &str) {}

    pub fn set_favicon_badge(_badge: bool) {}

    pub fn notifications_allowed() -> Option<bool> {
        None
    }

    pub fn ask_for_notifications(_then: impl FnOnce(bool) + 'static) {}

    pub fn notify(_title: &str, _body: &str) {}

    pub fn focus(_id: &str) {}

    pub fn pass_focus(_from: &str, _to: &str) {}

    pub fn lower(s: &str) -> String {
        s.to_lowercase()
    }

    pub fn on_viewport_resize(_f: impl Fn(Option<f64>) + 'static) {}

    pub fn on_visibility_change(_f: impl Fn(bool) + 'static) {}
}

pub use imp::*;
