use crate::components::Flame;
use leptos::prelude::*;

/// The page for a path that leads nowhere (the server answers it with 404).
#[component]
pub fn NotFound(
    /// The path named a room that does not exist (or expired).
    room: bool,
) -> impl IntoView {
    let (title, text) = if room {
        ("No such room", "It may never have existed, or it expired after everyone left.")
    } else {
        ("Nothing here", "This page does not exist, or it burned out.")
    };
    view! {
        <main class="mx-auto max-w-xl px-4 py-24 text-center">
            <p class="flex justify-center text-orange-600"><Flame class="size-14" /></p>
            <h1 class="mt-4 text-2xl font-bold">{title}</h1>
            <p class="mt-2 text-stone-600 dark:text-stone-400">{text}</p>
            <a href="/" class="mt-6 inline-block font-semibold text-orange-700 underline dark:text-orange-300">"See the rooms"</a>
        </main>
    }
}
