use leptos::prelude::*;

/// Burner's mark, drawn rather than an emoji so it looks the same on every system.
#[component]
pub fn Flame(#[prop(default = "size-5")] class: &'static str) -> impl IntoView {
    view! {
        <svg aria-hidden="true" viewBox="0 0 32 32" class=class>
            <path
                fill="currentColor"
                d="M16 2c1 5-4 8-4 13a4 4 0 0 0 8 0c0-2-1-3-1-5 4 2 7 6 7 11a10 10 0 0 1-20 0C6 13 14 9 16 2Z"
            />
        </svg>
    }
}
