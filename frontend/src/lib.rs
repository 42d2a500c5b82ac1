//! The browser entry point: hydrates the page the server rendered into the live app.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // The server embedded the page it rendered; without it there is nothing to bring to life.
    if let Some(page) = app::page::Page::embedded() {
        leptos::mount::hydrate_body(move || app::App(app::AppProps { page }));
    }
}
