//! Burner's shared crate: the WebSocket protocol, the naming and message rules, and the Leptos
//! app (pages, components, server functions). Compiled for the server with `ssr` (rendering,
//! server functions) and for the browser with `hydrate` (the live client).

// Leptos view types nest deeply; the compiler needs more room to lay them out.
#![recursion_limit = "256"]

pub mod api;
pub mod browser;
pub mod components;
pub mod page;
pub mod pages;
pub mod protocol;
pub mod rules;
pub mod text;
#[cfg(feature = "hydrate")]
pub mod ws_client;

use leptos::{either::EitherOf3, prelude::*};
use page::{PAGE_DATA_ID, Page};

/// The HTML document around the page, rendered on the server only. The page also travels as
/// JSON, for the browser to hydrate the same page (see [`page`]).
pub fn shell(options: LeptosOptions, page: Page) -> impl IntoView {
    let title = page.title();
    let data = page.to_embedded_json();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1, interactive-widget=resizes-content" />
                <meta name="color-scheme" content="light dark" />
                <meta name="description" content="Burner: anonymous real-time chat rooms. No accounts, just a nickname." />
                <title>{title}</title>
                <link rel="stylesheet" href="/pkg/burner.css" />
                <link rel="icon" href="/pkg/favicon.svg" />
                <script type="application/json" id=PAGE_DATA_ID>{data}</script>
                <HydrationScripts options />
            </head>
            <body class="bg-stone-50 text-stone-900 antialiased dark:bg-stone-950 dark:text-stone-100">
                <App page />
            </body>
        </html>
    }
}

#[component]
pub fn App(page: Page) -> impl IntoView {
    components::provide_hydrated();
    // `Either`, not `into_any`: an erased view carries every rendering path (SSR, async
    // hydration…) into the bundle, needed or not.
    match page {
        Page::Home { rooms, form_error } => EitherOf3::A(view! { <pages::HomePage rooms form_error /> }),
        Page::Room { preview } => EitherOf3::B(view! { <pages::RoomPage preview /> }),
        Page::NotFound { room } => EitherOf3::C(view! { <pages::NotFound room /> }),
    }
}
