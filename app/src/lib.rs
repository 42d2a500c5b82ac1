//! Burner's shared crate: the WebSocket protocol, the naming and message rules, and the Leptos
//! app (pages, components, server functions). Compiled for the server with `ssr` (rendering,
//! server functions) and for the browser with `hydrate` (the live client).

// Leptos view types nest deeply; the compiler needs more room to lay them out.
#![recursion_limit = "256"]

pub mod api;
pub mod browser;
pub mod components;
pub mod pages;
pub mod protocol;
pub mod rules;
pub mod text;
#[cfg(feature = "hydrate")]
pub mod ws_client;

use leptos::prelude::*;
use leptos_meta::{Link, Meta, MetaTags, Title, provide_meta_context};
use leptos_router::{
    SsrMode, StaticSegment,
    components::{Route, Router, Routes},
    path,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1, interactive-widget=resizes-content" />
                <meta name="color-scheme" content="light dark" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body class="bg-stone-50 text-stone-900 antialiased dark:bg-stone-950 dark:text-stone-100">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::provide_hydrated();
    view! {
        <Link rel="stylesheet" href="/pkg/burner.css" />
        <Link rel="icon" href="/pkg/favicon.svg" />
        <Meta name="description" content="Burner: anonymous real-time chat rooms. No accounts, just a nickname." />
        <Title formatter=|title: String| if title.is_empty() { "Burner".to_owned() } else { format!("{title} · Burner") } />
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=StaticSegment("") view=pages::HomePage ssr=SsrMode::Async />
                <Route path=path!("/r/:slug") view=pages::RoomPage ssr=SsrMode::Async />
            </Routes>
        </Router>
    }
}
