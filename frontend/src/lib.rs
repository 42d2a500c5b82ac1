//! The browser entry point for visitors' pages: hydrates the page the server rendered.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    // Only a `PANIC_MESSAGES=1` build has a message to show: the others stop at a panic at once,
    // before any hook could run (scripts/env.sh).
    #[cfg(panic_messages)]
    console_error_panic_hook::set_once();
    app::hydrate();
}
