//! The moderator console's browser entry point: hydrates `/mod` (see `app::pages::Console`).

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    app::hydrate();
}
