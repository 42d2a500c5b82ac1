use crate::components::Flame;
use leptos::prelude::*;
use leptos_meta::Title;

/// Answers 404 on the server too, so crawlers and scripts see the truth.
#[component]
pub fn NotFound() -> impl IntoView {
    set_not_found_status();
    view! {
        <Title text="Not found" />
        <main class="mx-auto max-w-xl px-4 py-24 text-center">
            <p class="flex justify-center text-orange-600"><Flame class="size-14" /></p>
            <h1 class="mt-4 text-2xl font-bold">"Nothing here"</h1>
            <p class="mt-2 text-stone-600 dark:text-stone-400">"This page does not exist, or it burned out."</p>
            <a href="/" class="mt-6 inline-block font-semibold text-orange-700 underline dark:text-orange-300">"See the rooms"</a>
        </main>
    }
}

pub fn set_not_found_status() {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(axum::http::StatusCode::NOT_FOUND);
    }
}
