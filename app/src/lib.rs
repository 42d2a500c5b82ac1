//! Burner's shared crate: the WebSocket protocol, the naming and message rules, and the Leptos
//! app (pages, components, server functions). Compiled for the server with `ssr` (rendering,
//! server functions) and for the browser with `hydrate` (the live client).

// Leptos view types nest deeply; the compiler needs more room to lay them out.
#![recursion_limit = "256"]

pub mod api;
pub mod browser;
pub mod components;
pub mod json;
pub mod page;
pub mod pages;
pub mod protocol;
pub mod rules;
pub mod text;
#[cfg(feature = "hydrate")]
pub mod ws_client;

use leptos::{either::EitherOf5, prelude::*};
use page::{PAGE_DATA_ID, Page};

/// Where the moderator console's bundle is served (`console/`), next to `/pkg` (`frontend/`).
pub const CONSOLE_PKG_DIR: &str = "console-pkg";

/// The HTML document around the page, rendered on the server only. The page also travels as
/// JSON, for the browser to hydrate the same page (see [`page`]). The console loads its own
/// bundle; every other page the visitors' one.
pub fn shell(options: LeptosOptions, page: Page) -> impl IntoView {
    let mut options = options;
    if matches!(page, Page::Console { .. }) {
        options.output_name = "console".into();
        options.site_pkg_dir = CONSOLE_PKG_DIR.into();
    }
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
        Page::Home { rooms, form_error, banned } => EitherOf5::A(view! { <pages::HomePage rooms form_error banned /> }),
        Page::Room { preview, banned } => EitherOf5::B(view! { <pages::RoomPage preview banned /> }),
        Page::NotFound { room } => EitherOf5::C(view! { <pages::NotFound room /> }),
        Page::SignIn { error } => EitherOf5::D(view! { <pages::SignIn error /> }),
        #[cfg(feature = "console")]
        Page::Console { snapshot } => EitherOf5::E(view! { <pages::Console snapshot /> }),
        // Never hydrated by this bundle: the console page loads the console's.
        #[cfg(not(feature = "console"))]
        Page::Console { .. } => EitherOf5::E(()),
    }
}

/// Brings the page the server rendered (and embedded) to life.
#[cfg(feature = "hydrate")]
pub fn hydrate() {
    // Without the embedded page there is nothing to bring to life.
    if let Some(page) = Page::embedded() {
        leptos::mount::hydrate_body(move || App(AppProps { page }));
    }
}
